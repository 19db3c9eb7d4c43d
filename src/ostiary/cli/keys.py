"""`ostiary keys`: list, import, rotate and prune the server's signing keys; rewrap the secret key."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..keys import ASYMMETRIC_ALGS
from .common import config_option, database_option, emit_json, json_option, load, with_provider

if TYPE_CHECKING:
    from ..app.provider import Provider
    from ..app.secret_key import RewrapReport
    from ..keys import SigningKey


@click.group()
def keys_group() -> None:
    """Signing keys: a new key is published before it signs; a retired key stays published
    until every token it signed has expired."""


@keys_group.command("list")
@config_option
@database_option
@json_option
def keys_list(config_file: str | None, database_url: str | None, as_json: bool) -> None:
    """List keys with their status (active, next, retired)."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> list[SigningKey]:
        return list(await p.key_store.list())

    keys = with_provider(settings, action, changes=False)
    rows = [{
        "kid": k.kid, "alg": k.alg, "status": k.status, "created_at": k.created_at.isoformat(),
        "publish_until": k.publish_until.isoformat() if k.publish_until else None,
        "x509": bool(k.certificates),
    } for k in keys]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        until = f" published until {r['publish_until']}" if r["publish_until"] else ""
        cert = " x5c" if r["x509"] else ""
        click.echo(f"{r['kid']}  {r['alg']:6} {r['status']:8}{cert}{until}")


def _passphrase(path: str | None) -> bytes | None:
    return Path(path).read_bytes().rstrip(b"\r\n") if path else None


@keys_group.command("import")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False), help="PEM or DER private key.")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False),
              help="X.509 certificate (chain), published as x5c and x5t#S256.")
@click.option("--pkcs12", "pkcs12_file", type=click.Path(exists=True, dir_okay=False),
              help="PKCS#12 file holding key and certificate chain.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False),
              help="File holding the key's passphrase.")
@click.option("--alg", help="JWS algorithm (default: from the key, e.g. ES256, RS256).")
@click.option("--activate", is_flag=True, help="Sign with it now (default: publish as next key).")
@config_option
@database_option
def keys_import(key_file: str | None, cert_file: str | None, pkcs12_file: str | None, passphrase_file: str | None,
                alg: str | None, activate: bool, config_file: str | None, database_url: str | None) -> None:
    """Import a key from PEM (+ X.509 certificate) or PKCS#12."""
    from ..keys import KeyError_, SigningKey, signing_key_from_pem, signing_key_from_pkcs12

    if bool(key_file) == bool(pkcs12_file):
        raise click.UsageError("give either --key (with optional --cert) or --pkcs12")
    settings = load(config_file, database_url=database_url)
    try:
        if pkcs12_file:
            key = signing_key_from_pkcs12(Path(pkcs12_file).read_bytes(), passphrase=_passphrase(passphrase_file),
                                          alg=alg)
        else:
            assert key_file is not None
            cert = Path(cert_file).read_bytes() if cert_file else None
            key = signing_key_from_pem(Path(key_file).read_bytes(), cert, passphrase=_passphrase(passphrase_file),
                                       alg=alg)
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from None

    async def action(p: Provider) -> bool:
        from ..app.bootstrap import max_token_lifetime
        from ..server.keyring import activate as make_active

        if activate:
            return await make_active(p.key_store, key, await max_token_lifetime(p))
        return await p.key_store.add(SigningKey(alg=key.alg, jwk=key.jwk, certificates=key.certificates,
                                                status="next"))

    changed = with_provider(settings, action)
    state = "active" if activate else "next"
    click.echo(f"{key.kid}  {key.alg}  {state if changed else 'already present'}")


@keys_group.command("rotate")
@click.option("--alg", type=click.Choice(ASYMMETRIC_ALGS),
              help="Algorithm to rotate (default: the token signing algorithm).")
@config_option
@database_option
def keys_rotate(alg: str | None, config_file: str | None, database_url: str | None) -> None:
    """Promote the published next key, retire the active one, publish a new next key."""
    settings = load(config_file, database_url=database_url)
    chosen = alg or settings.tokens.signing_alg

    async def action(p: Provider) -> tuple[SigningKey, SigningKey]:
        from ..app.bootstrap import max_token_lifetime
        from ..server.keyring import rotate

        return await rotate(p.key_store, chosen, await max_token_lifetime(p))

    active, nxt = with_provider(settings, action)
    click.echo(f"active {active.kid} ({active.alg})\nnext   {nxt.kid} ({nxt.alg}, published, not signing)")


@keys_group.command("prune")
@config_option
@database_option
def keys_prune(config_file: str | None, database_url: str | None) -> None:
    """Delete retired keys that are no longer published."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> list[str]:
        from ..server.keyring import prune

        return await prune(p.key_store)

    for kid in with_provider(settings, action):
        click.echo(f"deleted {kid}")


@keys_group.command("rewrap")
@config_option
@database_option
def keys_rewrap(config_file: str | None, database_url: str | None) -> None:
    """Re-seal every stored secret (private keys, client_secret_jwt keys, registration tokens) under
    the current secret key.

    \b
    With OSTIARY_SECRET_KEY: run it after setting the new key as OSTIARY_SECRET_KEY and the old one
    as OSTIARY_SECRET_KEY_PREVIOUS on every node; then remove OSTIARY_SECRET_KEY_PREVIOUS.
    With the generated key file beside an SQLite database: stop the server; a new key is
    generated, everything is re-sealed under it, and it replaces the file's key."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> RewrapReport:
        from ..app.secret_key import rewrap

        return await rewrap(p)

    report = with_provider(settings, action)
    where = f" (new key in {report.key_file})" if report.key_file else ""
    click.echo(f"re-sealed {report.resealed}, already under the current key {report.current}{where}")
    if report.unreadable:
        click.echo(f"{len(report.unreadable)} value(s) open with no known key and were left as they were:", err=True)
        for name in report.unreadable:
            click.echo(f"  {name}", err=True)
        raise SystemExit(1)
