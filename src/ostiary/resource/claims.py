"""Claim rules for access tokens (RFC 9068 §4, RFC 7519 §4.1) and the Principal they yield."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .errors import InvalidToken
from .principal import Principal, parse_scope

__all__ = ["RFC9068_REQUIRED", "check_claims", "principal_from_claims"]

# RFC 9068 §2.2: claims every JWT access token carries
RFC9068_REQUIRED: tuple[str, ...] = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if type(value) is int or type(value) is float:
        return value
    raise InvalidToken(f"claim {name} must be a number")


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audiences: frozenset[str],
    required: Collection[str],
    leeway: float,
    now: float,
) -> None:
    """Raise InvalidToken unless the claims are current and meant for us."""
    for name in required:
        if name not in claims:
            raise InvalidToken(f"token has no {name} claim")
    exp = _number(claims, "exp")
    if exp is not None and exp + leeway <= now:
        raise InvalidToken("token has expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf - leeway > now:
        raise InvalidToken("token is not yet valid")
    iat = _number(claims, "iat")
    if iat is not None and iat - leeway > now:
        raise InvalidToken("token was issued in the future")
    if claims.get("iss") != issuer:  # RFC 9068 §4: exact match
        raise InvalidToken("token has the wrong issuer")
    aud = claims.get("aud")
    if isinstance(aud, str):
        ok = aud in audiences
    elif isinstance(aud, list):
        ok = any(isinstance(a, str) and a in audiences for a in aud)
    else:
        ok = False
    if not ok:  # RFC 9068 §4: the token must be meant for this resource server
        raise InvalidToken("token is not meant for this audience")


def principal_from_claims(claims: Mapping[str, Any], token: str) -> Principal:
    sub = claims.get("sub")
    client_id = claims.get("client_id")
    exp = claims.get("exp")
    return Principal(
        subject=sub if isinstance(sub, str) else None,
        client_id=client_id if isinstance(client_id, str) else None,
        scopes=parse_scope(claims.get("scope", claims.get("scp"))),
        claims=claims,
        token=token,
        expires_at=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
    )
