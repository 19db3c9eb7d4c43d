"""Which user claims go where: scopes (OIDC Core §5.4) and the `claims` request parameter (§5.5)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ..errors import InvalidRequest
from ..store.identity import User

__all__ = ["SCOPE_CLAIMS", "parse_claims_request", "user_claims"]

SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "profile": ("name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
                "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
OIDC_SCOPES = frozenset({"openid", "profile", "email", "address", "phone", "offline_access"})


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


def user_claims(user: User, scopes: Iterable[str], requested: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The user's claims released for `scopes` plus those asked for by name; `sub` always."""
    names: set[str] = set()
    for scope in scopes:
        names.update(SCOPE_CLAIMS.get(scope, ()))
    if "fhirUser" in scopes or "fhirUser" in (requested or {}):
        names.add("fhirUser")
    names.update(requested or {})
    claims = {"sub": user.id}
    profile = dict(user.claims)
    profile.setdefault("preferred_username", user.username)
    profile.setdefault("updated_at", user.updated_at)
    for name in sorted(names):
        if name in profile and name != "sub":
            claims[name] = profile[name]
    return claims
