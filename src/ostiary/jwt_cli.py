"""``ostiary jwt``: make keys, sign, verify, decode and fingerprint JWTs from the command line.

Keys come from PEM (PKCS#8, SEC1, PKCS#1, optionally encrypted), X.509 certificates, PKCS#12 files
or JWK / JWKS JSON. Signing and verification go through ``ostiary.jwt`` (joserfc underneath).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from . import jwt
from .keys import (
    ASYMMETRIC_ALGS,
    HMAC_ALGS,
    KeyError_,
    SigningKey,
    alg_for_key,
    certificate_thumbprint,
    import_jwk,
    load_certificates,
    private_key_pem,
    self_signed_certificate,
    signing_key_from_pem,
    signing_key_from_pkcs12,
)

__all__ = ["jwt_group", "parse_duration"]

Key = ECKey | RSAKey | OKPKey | OctKey
KEY_TYPES = {"ec-p256": "ES256", "ec-p384": "ES384", "ec-p521": "ES512", "rsa": "RS256", "ed25519": "EdDSA"}
_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in ``90``, ``90s``, ``15m``, ``1h30m``, ``2d``, ``1w``; raises click.BadParameter."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 15m, 1h, 1h30m, 7d")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _passphrase(value: str | None) -> bytes | None:
    value = value or os.environ.get("OSTIARY_KEY_PASSPHRASE")
    return value.encode() if value else None


def _public_jwk(public: object) -> Key:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECKey.import_key(public)
    pem = public.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if isinstance(public, rsa.RSAPublicKey):
        return RSAKey.import_key(pem)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return OKPKey.import_key(pem)
    raise click.ClickException("unsupported public key type")


def load_signing_key(path: Path, cert: Path | None, passphrase: bytes | None, alg: str | None) -> SigningKey | Key:
    """A private key from PEM (+ certificate), PKCS#12 or JWK; raises click.ClickException."""
    data = path.read_bytes()
    try:
        if path.suffix.lower() in (".p12", ".pfx"):
            return signing_key_from_pkcs12(data, passphrase=passphrase, alg=alg)
        if data.lstrip().startswith(b"{"):
            jwk = import_jwk(json.loads(data))
            if isinstance(jwk, OctKey):
                return jwk
            if jwk.private_key is None:
                raise click.ClickException(f"{path} is a public key; signing needs the private key")
            return SigningKey(alg=alg or str(jwk.get("alg") or alg_for_key(jwk)), jwk=jwk)
        return signing_key_from_pem(data, cert.read_bytes() if cert else None, passphrase=passphrase, alg=alg)
    except (KeyError_, ValueError) as exc:
        raise click.ClickException(f"cannot use {path} as a signing key: {exc}") from exc


def load_verification_keys(path: Path, passphrase: bytes | None) -> KeySet | Key:
    """Public keys from a PEM key, a certificate, a JWK or a JWKS file."""
    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"{"):
            doc = json.loads(data)
            if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
                return KeySet([import_jwk(k) for k in doc["keys"]])
            return import_jwk(doc)
        if b"CERTIFICATE" in data or path.suffix.lower() in (".der", ".crt", ".cer"):
            return _public_jwk(load_certificates(data)[0].public_key())
        if b"PRIVATE KEY" in data:
            return _public_jwk(signing_key_from_pem(data, passphrase=passphrase).jwk.public_key)
        return _public_jwk(serialization.load_pem_public_key(data))
    except (KeyError_, ValueError) as exc:
        raise click.ClickException(f"cannot read a key from {path}: {exc}") from exc


def _token_arg(token: str) -> str:
    return sys.stdin.read().strip() if token == "-" else token.strip()


def _when(ts: object, now: float) -> str:
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return "not a number"
    iso = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = int(ts - now)
    ago = f"in {parse_seconds(delta)}" if delta >= 0 else f"{parse_seconds(-delta)} ago"
    return f"{iso} ({ago})"


def parse_seconds(seconds: int) -> str:
    out: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not out):
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out[:2])


@click.group("jwt")
def jwt_group() -> None:
    """Make keys and sign, verify, decode and fingerprint JWTs."""


@jwt_group.command()
@click.option("--type", "key_type", type=click.Choice(sorted(KEY_TYPES)), default="ec-p256", show_default=True)
@click.option("--bits", type=click.Choice(["2048", "3072", "4096"]), default="2048", help="RSA key size.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Private key file (PEM, mode 0600).")
@click.option("--x509", "make_cert", is_flag=True, help="Also write a self-signed certificate.")
@click.option("--subject", default=None, help="Certificate subject CN (with --x509).")
@click.option("--days", default=365, show_default=True, help="Certificate validity (with --x509).")
@click.option("--cert-out", type=click.Path(path_type=Path), default=None, help="Default: <out>.crt")
@click.option("--passphrase", default=None, help="Encrypt the key (or set OSTIARY_KEY_PASSPHRASE).")
@click.option("--alg", default=None,
              help="JWS alg written into the JWK (RSA: RS256/384/512, PS256/384/512). Default: from the key type.")
@click.option("--jwks", "as_jwks", is_flag=True, help='Print a JWK Set ({"keys": [...]}) ready for --jwks-file.')
def keygen(
    key_type: str, bits: str, out: Path, make_cert: bool, subject: str | None, days: int,
    cert_out: Path | None, passphrase: str | None, alg: str | None, as_jwks: bool,
) -> None:
    """Generate a private key; print its public JWK (kid = RFC 7638 thumbprint)."""
    default_alg = KEY_TYPES[key_type]
    if alg is not None and alg != default_alg and not (key_type == "rsa" and alg[:2] in ("RS", "PS")):
        raise click.UsageError(f"--alg {alg} does not fit a {key_type} key")
    alg = alg or default_alg
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if key_type == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=int(bits))
    else:
        private = SigningKey.generate(alg).jwk.private_key  # type: ignore[assignment]
    pem = private_key_pem(private, _passphrase(passphrase))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    certs = []
    if make_cert:
        if not subject:
            raise click.UsageError("--x509 needs --subject CN")
        cert = self_signed_certificate(private, subject, days=days)
        cert_path = cert_out or out.with_suffix(".crt")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        certs.append(cert)
        click.echo(f"certificate: {cert_path} (x5t#S256 {certificate_thumbprint(cert)})", err=True)
    key = signing_key_from_pem(private_key_pem(private), alg=alg)
    key = SigningKey(alg=alg, jwk=key.jwk, certificates=tuple(certs))
    click.echo(f"private key: {out} ({alg}, kid {key.kid})", err=True)
    public = key.public_jwk()
    click.echo(json.dumps({"keys": [public]} if as_jwks else public, indent=2))


def _claim_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@jwt_group.command()
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Private key: PEM, PKCS#12 (.p12/.pfx) or JWK (.json).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="X.509 chain (PEM).")
@click.option("--passphrase", default=None, help="Key passphrase (or set OSTIARY_KEY_PASSPHRASE).")
@click.option("--alg", default=None, help="Default: from the key (ES256 for P-256, RS256 for RSA, ...).")
@click.option("--claims", "claims_src", default=None, help="JSON object, or @file.json.")
@click.option("--iss", default=None)
@click.option("--sub", default=None)
@click.option("--aud", multiple=True, help="Repeat for several audiences.")
@click.option("--scope", default=None)
@click.option("--claim", "extra", multiple=True, help="k=v (v parsed as JSON if it can be).")
@click.option("--exp", "exp_in", default="1h", show_default=True, help="Lifetime, e.g. 15m, 1h, 7d.")
@click.option("--nbf", "nbf_in", default=None, help="Not before: a delay from now, e.g. 5m.")
@click.option("--typ", default="JWT", show_default=True, help="Header typ, e.g. at+jwt.")
@click.option("--kid", default=None, help="Override the header kid (default: RFC 7638 thumbprint).")
@click.option("--no-jti", is_flag=True, help="Do not add a random jti.")
def sign(
    key_path: Path, cert: Path | None, passphrase: str | None, alg: str | None, claims_src: str | None,
    iss: str | None, sub: str | None, aud: tuple[str, ...], scope: str | None, extra: tuple[str, ...],
    exp_in: str, nbf_in: str | None, typ: str, kid: str | None, no_jti: bool,
) -> None:
    """Sign claims into a compact JWT and print it."""
    claims: dict[str, Any] = {}
    if claims_src:
        text = Path(claims_src[1:]).read_text() if claims_src.startswith("@") else claims_src
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--claims") from exc
        if not isinstance(loaded, dict):
            raise click.BadParameter("claims must be a JSON object", param_hint="--claims")
        claims.update(loaded)
    now = int(time.time())
    claims.setdefault("iat", now)
    claims.setdefault("exp", now + parse_duration(exp_in))
    if nbf_in:
        claims["nbf"] = now + parse_duration(nbf_in)
    if not no_jti:
        claims.setdefault("jti", uuid.uuid4().hex)
    for name, value in (("iss", iss), ("sub", sub), ("scope", scope)):
        if value is not None:
            claims[name] = value
    if aud:
        claims["aud"] = aud[0] if len(aud) == 1 else list(aud)
    for item in extra:
        name, eq, raw = item.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"{item!r} is not k=v", param_hint="--claim")
        claims[name] = _claim_value(raw)
    key = load_signing_key(key_path, cert, _passphrase(passphrase), alg)
    headers: dict[str, Any] = {}
    if isinstance(key, SigningKey) and key.certificates:
        headers["x5t#S256"] = certificate_thumbprint(key.certificates[0])
    if kid:
        headers["kid"] = kid
    use_alg = alg if isinstance(key, OctKey) else None
    if isinstance(key, OctKey) and use_alg is None:
        use_alg = "HS256"
    try:
        click.echo(jwt.sign(claims, key, alg=use_alg, typ=typ or None, headers=headers or None))
    except Exception as exc:  # joserfc's errors for a key/alg mismatch
        raise click.ClickException(f"cannot sign: {exc}") from exc


@jwt_group.command()
@click.argument("token")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Public/private key PEM, X.509 certificate, JWK or JWKS file.")
@click.option("--jwks-url", default=None, help="Fetch the JWKS from this URL.")
@click.option("--passphrase", default=None)
@click.option("--alg", "algs", multiple=True, help="Allowed algorithms (default: all asymmetric ones).")
@click.option("--iss", default=None, help="Required issuer.")
@click.option("--aud", default=None, help="Required audience.")
@click.option("--typ", default=None, help="Required typ, e.g. at+jwt.")
@click.option("--leeway", default=30, show_default=True, help="Clock skew allowed, seconds.")
@click.option("--require", "required", multiple=True, default=("exp",), show_default=True,
              help="Claims that must be present.")
def verify(
    token: str, key_path: Path | None, jwks_url: str | None, passphrase: str | None, algs: tuple[str, ...],
    iss: str | None, aud: str | None, typ: str | None, leeway: int, required: tuple[str, ...],
) -> None:
    """Verify TOKEN ('-' reads stdin); print its claims, or why it fails (exit status 1)."""
    if bool(key_path) == bool(jwks_url):
        raise click.UsageError("give exactly one of --key or --jwks-url")
    if jwks_url:
        try:
            response = httpx.get(jwks_url, timeout=10.0)
            response.raise_for_status()
            keys: KeySet | Key = KeySet([import_jwk(k) for k in response.json()["keys"]])
        except (httpx.HTTPError, ValueError, KeyError, TypeError, KeyError_) as exc:
            raise click.ClickException(f"cannot load the JWKS from {jwks_url}: {exc}") from exc
    else:
        assert key_path is not None
        keys = load_verification_keys(key_path, _passphrase(passphrase))
    allowed = algs or (HMAC_ALGS if isinstance(keys, OctKey) else ASYMMETRIC_ALGS)
    try:
        result = jwt.verify(
            _token_arg(token), keys, algorithms=allowed, issuer=iss, audience=aud, typ=typ,
            leeway=leeway, required=required,
        )
    except jwt.JWTInvalid as exc:
        click.echo(f"invalid: {exc.reason}", err=True)
        sys.exit(1)
    click.echo("valid", err=True)
    click.echo(json.dumps({"header": result.header, "claims": result.claims}, indent=2))


@jwt_group.command()
@click.argument("token")
def decode(token: str) -> None:
    """Show TOKEN's header and claims WITHOUT verifying it, with readable times."""
    try:
        parsed = jwt.decode_unverified(_token_arg(token))
    except jwt.JWTInvalid as exc:
        click.echo(f"invalid: {exc.reason}", err=True)
        sys.exit(1)
    now = time.time()
    times = {k: _when(parsed.claims[k], now) for k in ("iat", "nbf", "exp", "auth_time") if k in parsed.claims}
    click.echo("not verified: do not trust these values", err=True)
    click.echo(json.dumps({"header": parsed.header, "claims": parsed.claims, "times": times}, indent=2))


@jwt_group.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--passphrase", default=None)
def thumbprint(path: Path, passphrase: str | None) -> None:
    """Print the RFC 7638 thumbprint of a key, certificate or JWK (and a certificate's x5t#S256)."""
    data = path.read_bytes()
    if b"CERTIFICATE" in data:
        cert = load_certificates(data)[0]
        click.echo(_public_jwk(cert.public_key()).thumbprint())
        click.echo(f"x5t#S256 {certificate_thumbprint(cert)}", err=True)
        return
    keys = load_verification_keys(path, _passphrase(passphrase))
    if isinstance(keys, KeySet):
        for key in keys:
            click.echo(key.thumbprint())
    else:
        click.echo(keys.thumbprint())
