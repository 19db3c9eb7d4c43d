"""Validation of an upstream ID token (OIDC Core §3.1.3.7), every rule in one function.

Signature with the upstream's keys and an algorithm the administrator allows (never `none` or HMAC:
RFC 8725 §3.1), `iss` exactly the configured issuer, `aud` containing our client id, `azp` equal to it
when there are several audiences, `exp` and `iat` (with leeway), `nonce` equal to the one we sent
(replay, §15.5.2), `sub` present and at most 255 characters (§2), and the authentication time when
a fresh authentication was asked for (`prompt=login` / `max_age`, §3.1.2.1 and §3.1.3.7 item 13).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet

from ...jwt import DEFAULT_LEEWAY, JWTInvalid, decode_unverified, verify
from .upstream import UpstreamError

__all__ = ["MAX_ID_TOKEN_BYTES", "Freshness", "IdTokenRefused", "check_id_token", "header_kid"]

MAX_ID_TOKEN_BYTES = 16 * 1024


class IdTokenRefused(UpstreamError):
    """The ID token breaks a rule; ``reason`` names it (for the log and audit, never the token)."""


@dataclass(frozen=True, slots=True)
class Freshness:
    """What re-authentication was asked of the upstream: `prompt=login` from `started_at`, or `max_age`."""

    started_at: int  # when the browser was sent upstream
    login: bool = False
    max_age: int | None = None

    @property
    def required(self) -> bool:
        return self.login or self.max_age is not None


def header_kid(id_token: str) -> str | None:
    """The `kid` of an ID token's header, to pick the key (unverified; raises IdTokenRefused)."""
    if len(id_token) > MAX_ID_TOKEN_BYTES:
        raise IdTokenRefused("the ID token is too large")
    try:
        kid = decode_unverified(id_token).header.get("kid")
    except JWTInvalid as exc:
        raise IdTokenRefused(exc.reason) from None
    return kid if isinstance(kid, str) else None


def check_id_token(id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str,
                   algorithms: Collection[str], freshness: Freshness, now: int,
                   leeway: int = DEFAULT_LEEWAY) -> dict[str, Any]:
    """The claims of a valid upstream ID token; raises IdTokenRefused naming the broken rule."""
    if len(id_token) > MAX_ID_TOKEN_BYTES:
        raise IdTokenRefused("the ID token is too large")
    try:
        claims = verify(id_token, keys, algorithms=algorithms, issuer=issuer, audience=client_id,
                        required=("iss", "sub", "aud", "exp", "iat"), leeway=leeway, now=now).claims
    except JWTInvalid as exc:
        raise IdTokenRefused(exc.reason) from None
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise IdTokenRefused("several audiences and azp is not our client id")  # §3.1.3.7 items 4-5
    if "azp" in claims and claims["azp"] != client_id:
        raise IdTokenRefused("azp is not our client id")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise IdTokenRefused("wrong or missing nonce")
    sub = claims["sub"]
    if not isinstance(sub, str) or not 0 < len(sub) <= 255:
        raise IdTokenRefused("sub must be a string of 1 to 255 characters")
    auth_time = claims.get("auth_time")
    if auth_time is not None and (not isinstance(auth_time, int) or isinstance(auth_time, bool)):
        raise IdTokenRefused("auth_time must be an integer")
    if auth_time is not None and auth_time - leeway > now:
        raise IdTokenRefused("auth_time is in the future")
    if freshness.required:
        if auth_time is None:
            raise IdTokenRefused("re-authentication was asked and the ID token has no auth_time")
        # prompt=login: the upstream must have authenticated the user after we sent them there.
        if freshness.login and auth_time + leeway < freshness.started_at:
            raise IdTokenRefused("prompt=login was asked and the upstream authentication is older")
        if freshness.max_age is not None and now - auth_time > freshness.max_age + leeway:
            raise IdTokenRefused("the upstream authentication is older than max_age")
    return claims
