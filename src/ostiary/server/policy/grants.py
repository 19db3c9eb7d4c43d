"""Which grant may carry which scope (docs/security.md "Grant-type rules and token lifetimes").

A scope has a kind; `CARRIES` says which kinds each grant type may carry. `system/` scopes act
without a user (SMART Backend Services), so only client_credentials carries them, only for a
confidential client, and only with a private key unless an administrator allowed a secret.
`patient/`, `user/`, launch and identity scopes need a user, so client_credentials never does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

from ...errors import InvalidScope, InvalidTarget
from ...smart.scopes import IDENTITY_SCOPES, REFRESH_SCOPES
from ...store import Client
from ..audit import audit

__all__ = ["CARRIES", "ScopeKind", "check_grant", "check_refresh_resources", "may_carry", "scope_kind",
           "system_scope_refusal"]

ScopeKind = Literal["system", "patient", "user", "launch", "openid", "identity", "refresh", "api"]

_USER_DELEGATED: frozenset[ScopeKind] = frozenset(
    {"patient", "user", "launch", "openid", "identity", "refresh", "api"})
# grant_type -> the scope kinds it may carry; a grant type not listed carries API scopes only.
CARRIES: Mapping[str, frozenset[ScopeKind]] = {
    "authorization_code": _USER_DELEGATED,
    "refresh_token": _USER_DELEGATED,
    # `openid` is then decided by tokens.openid_on_client_credentials.
    "client_credentials": frozenset({"system", "openid", "api"}),
}
_OTHER_IDENTITY = frozenset({"email", "address", "phone"})


_LEVELS: Mapping[str, ScopeKind] = {"system/": "system", "patient/": "patient", "user/": "user"}


def scope_kind(token: str) -> ScopeKind:
    level = _LEVELS.get(token[:token.find("/") + 1]) if "/" in token else None
    if level is not None:
        return level
    if token == "launch" or token.startswith("launch/"):
        return "launch"
    if token == "openid":
        return "openid"
    if token in IDENTITY_SCOPES or token in _OTHER_IDENTITY:
        return "identity"
    if token in REFRESH_SCOPES:
        return "refresh"
    return "api"


def may_carry(grant_type: str, token: str) -> bool:
    return scope_kind(token) in CARRIES.get(grant_type, frozenset({"api"}))


def system_scope_refusal(client: Client) -> str | None:
    """Why this client may not hold system/ scopes at all, or None if it may."""
    if client.is_public:
        return "system/ scopes are never granted to a public client"
    if client.token_endpoint_auth_method != "private_key_jwt" and not client.system_scopes_with_secret:
        return "system/ scopes need private_key_jwt authentication (SMART Backend Services)"
    return None


def _refusal(grant_type: str, client: Client, token: str) -> str | None:
    if not may_carry(grant_type, token):
        return f"scope {token!r} cannot be granted through {grant_type}"
    if scope_kind(token) == "system":
        return system_scope_refusal(client)
    return None


def check_grant(client: Client, grant_type: str, scope: Sequence[str], *, explicit: bool) -> tuple[str, ...]:
    """The scopes this grant may carry for this client.

    A scope the client asked for (`explicit`) that the grant may not carry raises InvalidScope; one it
    did not ask for (a default, or an earlier grant being refreshed) is dropped. Both are audited.
    """
    kept: list[str] = []
    for token in scope:
        reason = _refusal(grant_type, client, token)
        if reason is None:
            kept.append(token)
            continue
        audit("scope_refused" if explicit else "scope_reduced", level=logging.WARNING,
              client_id=client.client_id, grant_type=grant_type, scope=token, reason=reason)
        if explicit:
            raise InvalidScope(reason)
    return tuple(kept)


def check_refresh_resources(client: Client, covered: Sequence[str], resources: Sequence[str]) -> None:
    """RFC 8707 §2.2: a refresh may ask only for resources the original grant covers (`covered`), so a
    refresh token cannot move to another of the client's audiences. Raises InvalidTarget, audited."""
    for resource in resources:
        if resource not in covered:
            audit("resource_refused", level=logging.WARNING, client_id=client.client_id,
                  grant_type="refresh_token", resource=resource, reason="not covered by the original grant")
            raise InvalidTarget(f"resource {resource!r} is not covered by the original grant (RFC 8707 §2.2)")
