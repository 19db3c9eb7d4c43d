"""`ostiary token`: get an access token with client credentials, or decode one."""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Any

import click
import httpx

from ..client.env import ConfigError, env_value
from .common import emit_json


def _readable_times(claims: dict[str, Any]) -> dict[str, Any]:
    out = dict(claims)
    for name in ("exp", "iat", "nbf", "auth_time"):
        if isinstance(out.get(name), int | float):
            out[name + "_utc"] = dt.datetime.fromtimestamp(out[name], dt.UTC).isoformat()
    return out


def _token_url(issuer: str, verify: bool | str) -> str:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        try:
            r = httpx.get(issuer.rstrip("/") + path, timeout=10, verify=verify)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {issuer}: {exc}") from None
        if r.status_code == 200:
            return str(r.json()["token_endpoint"])
    raise click.ClickException(f"{issuer} publishes no authorization server metadata")


@click.command()
@click.option("--client-id", envvar="OSTIARY_CLIENT_ID", help="env: OSTIARY_CLIENT_ID")
@click.option("--client-secret", envvar="OSTIARY_CLIENT_SECRET", help="env: OSTIARY_CLIENT_SECRET")
@click.option("--issuer", envvar="OSTIARY_ISSUER", default="http://127.0.0.1:8000", show_default=True,
              help="Issuer; the token endpoint is found by discovery (env: OSTIARY_ISSUER).")
@click.option("--token-url", envvar="OSTIARY_TOKEN_URL", help="Token endpoint (skips discovery).")
@click.option("--scope", envvar="OSTIARY_SCOPE", help="Space-separated scopes (env: OSTIARY_SCOPE).")
@click.option("--resource", multiple=True, help="Resource indicator (RFC 8707), repeatable.")
@click.option("--post", "use_post", is_flag=True, help="Send credentials in the body (client_secret_post).")
@click.option("--decode", is_flag=True, help="Also print the JWT's header and claims.")
@click.option("--token", "given", help="Decode this token instead of fetching one ('-' reads stdin).")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (development only).")
def token(client_id: str | None, client_secret: str | None, issuer: str, token_url: str | None, scope: str | None,
          resource: tuple[str, ...], use_post: bool, decode: bool, given: str | None, insecure: bool) -> None:
    """Print an access token (client_credentials), or decode one with --decode."""
    if given is not None:
        value = sys.stdin.read().strip() if given == "-" else given
        _decode(value)
        return
    try:  # the *_FILE forms, as for the client toolkit (container secrets are mounted as files)
        client_id = client_id or env_value(os.environ, "OSTIARY_CLIENT_ID")
        client_secret = client_secret or env_value(os.environ, "OSTIARY_CLIENT_SECRET")
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if not client_id or not client_secret:
        raise click.UsageError("--client-id and --client-secret (or OSTIARY_CLIENT_ID/_SECRET, or their _FILE "
                               "forms) are required")
    verify = not insecure
    url = token_url or _token_url(issuer, verify)
    form: dict[str, Any] = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    if resource:
        form["resource"] = list(resource)
    auth: tuple[str, str] | None = (client_id, client_secret)
    if use_post:
        form.update(client_id=client_id, client_secret=client_secret)
        auth = None
    try:
        r = httpx.post(url, data=form, auth=auth, timeout=15, verify=verify)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 200:
        raise click.ClickException(f"{r.status_code} {body.get('error', '')}: {body.get('error_description', r.text)}")
    click.echo(body["access_token"])
    if decode:
        _decode(body["access_token"], err=True)


def _decode(value: str, err: bool = False) -> None:
    from ..jwt import JWTInvalid, decode_unverified

    try:
        decoded = decode_unverified(value)
    except JWTInvalid:
        raise click.ClickException("not a JWT (an opaque token can be read with introspection)") from None
    if err:
        click.echo(click.style("(signature not checked)", dim=True), err=True)
    emit_json({"header": decoded.header, "claims": _readable_times(decoded.claims)})
