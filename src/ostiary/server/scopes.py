"""Scope syntax (RFC 6749 §3.3) and the policy that decides what a client is granted."""

from __future__ import annotations

import re

from ..errors import InvalidScope
from ..smart.policy import narrow
from ..smart.scopes import ScopeSet, is_clinical

__all__ = ["grant_scopes", "parse_scope"]

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Scope tokens in request order, duplicates dropped; raises InvalidScope on bad syntax."""
    if value is None:
        return ()
    tokens: list[str] = []
    for token in value.split(" "):
        if not token:
            continue
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("malformed scope value")
        if token not in tokens:
            tokens.append(token)
    return tuple(tokens)


def grant_scopes(requested: tuple[str, ...], allowed: frozenset[str]) -> tuple[str, ...]:
    """What to grant: plain scopes exactly as allowed; SMART resource scopes narrowed to what the
    client registered (SMART App Launch 2.2 §Scopes: a server may grant less than was asked for).

    Raises InvalidScope for a malformed SMART scope, a plain scope the client may not have, or
    FHIR resource scopes of which nothing at all can be granted.
    """
    clinical = tuple(s for s in requested if is_clinical(s))
    for token in requested:
        if not is_clinical(token) and token not in allowed:
            raise InvalidScope(f"scope {token!r} is not allowed for this client")
    if not clinical:
        return requested
    asked = ScopeSet.parse(clinical)
    granted = narrow(asked, ScopeSet.parse([a for a in allowed if is_clinical(a)])).tokens()
    if not granted:
        raise InvalidScope("none of the requested FHIR resource scopes is allowed for this client")
    plain = tuple(s for s in requested if not is_clinical(s))
    return (*granted, *plain)
