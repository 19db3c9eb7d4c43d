"""Who may learn about a token (RFC 7662 §2.1, §4; docs/security.md "Introspection and the resource side").

| caller | access token | refresh token |
|---|---|---|
| the token's own client | yes | yes |
| a resource server (admin-marked) whose audiences include one of the token's `aud` | yes | no |
| any other client | no | no |

Everything refused is answered `{"active": false}`, exactly like an unknown token, so a caller
learns nothing about tokens it has no right to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...store import Client

__all__ = ["ANSWER_MEMBERS", "answer_members", "introspection_refusal", "token_audiences", "token_type"]

# RFC 7662 §2.2 members, SMART App Launch 2.2 §Token Introspection (fhirUser, patient, encounter,
# fhirContext) and RFC 9449 §6.2 `cnf`. Never `sid` or `auth_time`: they describe the user's login.
ANSWER_MEMBERS = ("active", "token_type", "scope", "client_id", "sub", "iss", "aud", "iat", "exp", "jti",
                  "fhirUser", "patient", "encounter", "fhirContext", "cnf")


def token_audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    return tuple(a for a in aud if isinstance(a, str)) if isinstance(aud, list) else ()


def introspection_refusal(caller: Client, kind: str, claims: Mapping[str, Any]) -> str | None:
    """Why `caller` may not learn about this token, or None if it may."""
    if claims.get("client_id") == caller.client_id:
        return None
    if kind != "access_token":
        return "a refresh token is shown only to its own client"
    if not caller.resource_server:
        return "the caller is neither the token's client nor a resource server"
    if not set(token_audiences(claims)) & set(caller.audiences):
        return "the token's aud names none of the audiences this resource server serves"
    return None


def token_type(kind: str, claims: Mapping[str, Any]) -> str:
    """RFC 7662 `token_type`: DPoP for a key-bound access token, Bearer otherwise; never Bearer for a refresh token."""
    if kind != "access_token":
        return "refresh_token"
    cnf = claims.get("cnf")
    return "DPoP" if isinstance(cnf, Mapping) and "jkt" in cnf else "Bearer"


def answer_members(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {k: claims[k] for k in ANSWER_MEMBERS if k in claims}
