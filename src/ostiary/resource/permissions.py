"""Permission policies: what a verified token allows its caller to do.

A policy is any callable ``(Principal) -> frozenset[str]``. The default grants exactly the token's
scopes; ``ClaimPermissions`` maps claim values (roles, groups) to operations. A SMART on FHIR
policy (``patient/Observation.rs`` -> read + search on Observation) plugs in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from .principal import Principal, parse_scope

__all__ = ["ClaimPermissions", "PermissionPolicy", "all_of", "scope_permissions"]


class PermissionPolicy(Protocol):
    """Turns a verified token into the set of operations its caller may perform."""

    def __call__(self, principal: Principal, /) -> frozenset[str]: ...


def scope_permissions(principal: Principal, /) -> frozenset[str]:
    """Default policy: one permission per granted scope."""
    return principal.scopes


@dataclass(frozen=True, slots=True)
class ClaimPermissions:
    """Grant permissions from a claim's values, e.g. ``{"admin": {"users:write", "users:read"}}``.

    The claim may be a string (space-separated), a list of strings, or a dotted path into nested
    objects (``realm_access.roles``). Values with no entry in ``mapping`` grant nothing.
    """

    mapping: Mapping[str, Collection[str]]
    claim: str = "roles"
    include_scopes: bool = False

    def __call__(self, principal: Principal, /) -> frozenset[str]:
        value: object = principal.claims
        for part in self.claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        granted: set[str] = set(principal.scopes) if self.include_scopes else set()
        for item in parse_scope(value):
            granted.update(self.mapping.get(item, ()))
        return frozenset(granted)


def all_of(*policies: Callable[[Principal], frozenset[str]]) -> PermissionPolicy:
    """A policy granting the union of what each of ``policies`` grants."""

    def combined(principal: Principal, /) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for policy in policies:
            out = out | policy(principal)
        return out

    return combined
