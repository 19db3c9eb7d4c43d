"""JWT signing and verification with the claim rules Ostiary applies everywhere.

Thin wrappers over joserfc: the signature and algorithm checks are joserfc's; what this module
adds is one place for the claim rules (RFC 7519 §4.1): ``exp`` and ``nbf`` with a leeway, ``iat``
not in the future, ``iss`` exact, ``aud`` containing the expected value, ``typ`` exact
(RFC 8725 §3.11), and never ``alg: none`` (RFC 8725 §3.1).
"""

from __future__ import annotations

import base64
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from .keys import ASYMMETRIC_ALGS, HMAC_ALGS, SigningKey

__all__ = ["DEFAULT_LEEWAY", "CompactSigner", "JWTInvalid", "VerifiedJWT", "decode_unverified", "sign", "verify"]

DEFAULT_LEEWAY = 30  # seconds of clock skew tolerated on exp / nbf / iat

# RFC 9864 renames "EdDSA" to "Ed25519", but OIDC discovery and every client still use "EdDSA":
# joserfc's deprecation warning on each EdDSA signature is noise for an OpenID provider.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=Warning, module="joserfc")

Key = ECKey | RSAKey | OKPKey | OctKey
KeyResolver = KeySet | Key | Callable[[Any], Key]


class JWTInvalid(ValueError):
    """The token is not acceptable; ``reason`` is a short, safe explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedJWT:
    header: dict[str, Any]
    claims: dict[str, Any]


def sign(
    claims: Mapping[str, Any],
    key: SigningKey | Key,
    *,
    alg: str | None = None,
    typ: str | None = "JWT",
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS of ``claims``; with a SigningKey, ``kid`` and ``alg`` come from the key."""
    if isinstance(key, SigningKey):
        header: dict[str, Any] = {"alg": alg or key.alg, "kid": key.kid}
        jwk: Key = key.jwk
    else:
        if alg is None:
            raise ValueError("alg is required with a bare key")
        header = {"alg": alg}
        if key.kid:
            header["kid"] = key.kid
        jwk = key
    if typ:
        header["typ"] = typ
    if headers:
        header.update(headers)
    payload = orjson.dumps(dict(claims))
    return jws.serialize_compact(header, payload, jwk, algorithms=[header["alg"]])


class CompactSigner:
    """Signs many JWTs with one key and one header: the header is encoded once (hot path: tokens).

    The signature itself is joserfc's algorithm object for `alg` (the JWS rules are not re-coded
    here); only the per-token header validation, identical for every token, is done once.
    """

    def __init__(self, key: SigningKey, *, typ: str | None = "JWT", alg: str | None = None) -> None:
        header: dict[str, Any] = {"alg": alg or key.alg, "kid": key.kid}
        if typ:
            header["typ"] = typ
        if header["alg"] not in ASYMMETRIC_ALGS:
            raise ValueError(f"unsupported signing algorithm {header['alg']!r}")
        jws.default_registry.check_header(header)
        self._alg = jws.JWSRegistry.algorithms[header["alg"]]
        self._key = key.jwk
        self._prefix = _b64(orjson.dumps(header)) + b"."
        self.kid = key.kid

    def sign(self, claims: Mapping[str, Any]) -> str:
        signing_input = self._prefix + _b64(orjson.dumps(claims))
        signature = self._alg.sign(signing_input, self._key)
        return (signing_input + b"." + _b64(signature)).decode("ascii")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def decode_unverified(token: str | bytes) -> VerifiedJWT:
    """Header and claims WITHOUT checking the signature: for display and routing only."""
    try:
        obj = jws.extract_compact(token.encode() if isinstance(token, str) else token)
        claims = orjson.loads(obj.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise JWTInvalid("malformed JWT") from exc
    if not isinstance(claims, dict):
        raise JWTInvalid("JWT claims are not a JSON object")
    return VerifiedJWT(header=dict(obj.headers()), claims=claims)


def _check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str | None,
    audience: str | Collection[str] | None,
    leeway: int,
    now: float,
    required: Collection[str],
) -> None:
    for name in required:
        if name not in claims:
            raise JWTInvalid(f"missing claim {name!r}")
    for name in ("exp", "nbf", "iat"):
        if name in claims and (not isinstance(claims[name], int | float) or isinstance(claims[name], bool)):
            raise JWTInvalid(f"claim {name!r} must be a number")
    if "exp" in claims and claims["exp"] + leeway <= now:
        raise JWTInvalid("token has expired")
    if "nbf" in claims and claims["nbf"] - leeway > now:
        raise JWTInvalid("token is not yet valid")
    if "iat" in claims and claims["iat"] - leeway > now:
        raise JWTInvalid("token was issued in the future")
    if issuer is not None and claims.get("iss") != issuer:
        raise JWTInvalid("wrong issuer")
    if audience is not None:
        expected = {audience} if isinstance(audience, str) else set(audience)
        aud = claims.get("aud")
        items = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        # check the type before hashing: a list of lists or objects must be rejected, not crash
        if not all(isinstance(a, str) for a in items) or not (set(items) & expected):
            raise JWTInvalid("wrong audience")


def verify(
    token: str | bytes,
    keys: KeyResolver,
    *,
    algorithms: Collection[str] = ASYMMETRIC_ALGS,
    issuer: str | None = None,
    audience: str | Collection[str] | None = None,
    typ: str | Collection[str] | None = None,
    leeway: int = DEFAULT_LEEWAY,
    required: Collection[str] = ("exp",),
    now: float | None = None,
) -> VerifiedJWT:
    """Verify signature, algorithm, ``typ`` and claims; raises JWTInvalid saying why not."""
    allowed = [a for a in algorithms if a in ASYMMETRIC_ALGS or a in HMAC_ALGS]
    if isinstance(token, str):
        token = token.encode("ascii", "replace")
    if token.count(b".") != 2:
        raise JWTInvalid("not a compact JWS")
    try:
        obj = jws.extract_compact(token)
    except (JoseError, ValueError, TypeError) as exc:
        raise JWTInvalid("malformed JWT") from exc
    header = dict(obj.headers())
    alg = header.get("alg")
    if alg not in allowed:  # RFC 8725 §3.1: never "none", never an algorithm we did not allow
        raise JWTInvalid(f"algorithm {alg!r} is not allowed")
    if typ is not None:
        allowed_typ = {typ} if isinstance(typ, str) else set(typ)
        got_typ = str(header.get("typ", "")).lower()
        if got_typ.removeprefix("application/") not in {t.lower() for t in allowed_typ}:
            raise JWTInvalid(f"wrong typ {header.get('typ')!r}")
    try:
        jws.deserialize_compact(token, keys, algorithms=[alg])
    except JoseError as exc:
        raise JWTInvalid(_jose_reason(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise JWTInvalid("signature does not verify") from exc
    try:
        claims = orjson.loads(obj.payload)
    except orjson.JSONDecodeError as exc:
        raise JWTInvalid("JWT claims are not JSON") from exc
    if not isinstance(claims, dict):
        raise JWTInvalid("JWT claims are not a JSON object")
    _check_claims(
        claims, issuer=issuer, audience=audience, leeway=leeway,
        now=time.time() if now is None else now, required=required,
    )
    return VerifiedJWT(header=header, claims=claims)


def _jose_reason(exc: JoseError) -> str:
    name = type(exc).__name__
    if "Signature" in name:
        return "signature does not verify"
    if "KeyMismatch" in name or "key" in str(exc).lower():
        return "no key matches the token"
    return f"token rejected: {exc.error}"
