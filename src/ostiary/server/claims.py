"""Which user claims go where: scopes (OIDC Core §5.4) and the `claims` request parameter (§5.5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from ..errors import InvalidRequest
from ..store.identity import User

__all__ = ["PROTOCOL_CLAIMS", "SCOPE_CLAIMS", "AccessClaims", "FhirUserLookup", "acr_met", "consentable_claims",
           "parse_claims_request", "releasable_claims", "released_request", "user_claims"]

# The user's fhirUser (an absolute FHIR URL) from their access facts, or None.
FhirUserLookup = Callable[[str], Awaitable[str | None]]
# Access-token claims about the user's patients, from the user id and the granted scope.
AccessClaims = Callable[[str, Sequence[str]], Awaitable[dict[str, Any]]]

SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "profile": ("name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
                "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
OIDC_SCOPES = frozenset({"openid", "profile", "email", "address", "phone", "offline_access"})
# Set by the server from the authentication itself, never from the user's profile: always released.
PROTOCOL_CLAIMS = frozenset({"sub", "auth_time", "acr", "amr", "sid", "nonce"})
# User claims a client may ask for one by one with `claims` (OIDC Core §5.5); anything else is omitted.
USER_CLAIMS = frozenset({*(c for names in SCOPE_CLAIMS.values() for c in names), "fhirUser"})


def parse_claims_request(value: str | None) -> dict[str, Any]:
    """The `claims` parameter as {"userinfo": {...}, "id_token": {...}}; raises InvalidRequest."""
    if not value:
        return {}
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidRequest("claims must be a JSON object (OIDC Core §5.5)") from None
    if not isinstance(data, dict):
        raise InvalidRequest("claims must be a JSON object (OIDC Core §5.5)")
    out: dict[str, Any] = {}
    for member in ("userinfo", "id_token"):
        part = data.get(member)
        if part is None:
            continue
        if not isinstance(part, dict) or not all(v is None or isinstance(v, dict) for v in part.values()):
            raise InvalidRequest(f"claims.{member} must map claim names to null or an object")
        out[member] = part
    return out


def scope_claims(scopes: Iterable[str]) -> frozenset[str]:
    """Claims a scope stands for (OIDC Core §5.4; SMART's `fhirUser` scope for the `fhirUser` claim)."""
    names: set[str] = set()
    for scope in scopes:
        names.update(SCOPE_CLAIMS.get(scope, ()))
        if scope == "fhirUser":
            names.add("fhirUser")
    return frozenset(names)


def _requested_names(claims: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(name for member in ("userinfo", "id_token") for name in claims.get(member) or {})


def consentable_claims(claims: Mapping[str, Any], scopes: Iterable[str]) -> tuple[str, ...]:
    """User claims asked for with `claims` that the scopes do not cover: each needs the user's consent."""
    return tuple(sorted((_requested_names(claims) & USER_CLAIMS) - scope_claims(scopes)))


def releasable_claims(scopes: Iterable[str], consented: Iterable[str]) -> frozenset[str]:
    """What a grant may release: its scopes' claims plus claims consented one by one (issue: claims consent)."""
    return scope_claims(scopes) | (frozenset(consented) & USER_CLAIMS)


def released_request(claims: Mapping[str, Any], releasable: frozenset[str]) -> dict[str, Any]:
    """The `claims` request without what may not be released (OIDC Core §5.5.1: omitted, not an error)."""
    out: dict[str, Any] = {}
    for member in ("userinfo", "id_token"):
        if member in claims:
            out[member] = {k: v for k, v in (claims[member] or {}).items() if k in releasable}
    return out


def acr_met(claims: Mapping[str, Any], acr: str | None) -> bool:
    """False when `acr` is asked for as essential (OIDC Core §5.5.1.1) and `acr` is not one it accepts."""
    wanted = (claims.get("id_token") or {}).get("acr") or (claims.get("userinfo") or {}).get("acr")
    if not isinstance(wanted, dict) or wanted.get("essential") is not True:
        return True
    values = wanted.get("values") if "values" in wanted else [wanted["value"]] if "value" in wanted else None
    if not isinstance(values, list):
        return acr is not None
    return acr is not None and acr in values


def user_claims(user: User, scopes: Iterable[str], requested: Mapping[str, Any] | None = None, *,
                fhir_user: str | None = None) -> dict[str, Any]:
    """The user's claims released for `scopes` plus those asked for by name; `sub` always.

    `requested` must already be reduced to what the grant may release (`released_request`).
    `fhirUser` comes only from the user's access facts (`fhir_user`), never from profile claims.
    """
    names: set[str] = set(scope_claims(scopes))
    names.update(requested or {})
    claims = {"sub": user.id}
    profile = {k: v for k, v in user.claims.items() if k != "fhirUser"}
    if fhir_user:
        profile["fhirUser"] = fhir_user
    profile.setdefault("preferred_username", user.username)
    profile.setdefault("updated_at", user.updated_at)
    for name in sorted(names):
        if name in profile and name != "sub":
            claims[name] = profile[name]
    return claims
