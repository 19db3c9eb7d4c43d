"""SMART scopes in the resource-server guard: a PermissionPolicy and a per-request access object.

``SmartPermissions`` plugs into ``Guard(policy=...)`` and turns ``patient/Observation.rs`` into the
permissions ``patient/Observation.r`` and ``patient/Observation.s`` (route-level checks with
``require_scopes(permissions=...)``). ``SmartAccess`` carries the token's scopes and launch patient
into ``ostiary.smart.policy.check`` for the per-resource decision a route alone cannot make.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ..errors import InvalidScope
from ..resource.errors import InsufficientScope
from ..resource.permissions import PermissionPolicy
from ..resource.principal import Principal
from .policy import Decision, UserAccess, check
from .scopes import Permission, ScopeSet, is_clinical

__all__ = ["SmartAccess", "SmartPermissions", "permission_name", "token_scopes"]


def token_scopes(principal: Principal) -> ScopeSet:
    """The SMART scopes of a verified token; a malformed scope is dropped (fails closed), never raised."""
    kept: list[str] = []
    for token in sorted(principal.scopes):
        try:
            ScopeSet.parse(token)
        except InvalidScope:
            continue
        kept.append(token)
    return ScopeSet.parse(kept)


def permission_name(permission: Permission, resource_type: str | None = None) -> str:
    """``patient/Observation.r`` (``?param=value`` appended when restricted)."""
    text = f"{permission.level}/{resource_type or permission.resource_type}.{permission.interaction}"
    return f"{text}?{'&'.join(f'{k}={v}' for k, v in permission.query)}" if permission.query else text


@dataclass(frozen=True, slots=True)
class SmartPermissions:
    """PermissionPolicy: one permission per level, resource type and interaction granted.

    A wildcard scope gives ``patient/*.r`` and, for each of ``resource_types`` (the types the FHIR
    server serves), ``patient/<Type>.r``. A query-restricted scope gives only the restricted name
    (``patient/Observation.r?category=...``), so it never satisfies a route asking for the
    unrestricted permission. ``include_scopes`` adds the token's non-resource scopes unchanged
    (``openid``, ``launch/patient``, ``api:read``); a malformed resource scope grants nothing.
    """

    resource_types: Collection[str] = ()
    include_scopes: bool = True

    def __call__(self, principal: Principal, /) -> frozenset[str]:
        scopes = token_scopes(principal)
        out: set[str] = set()
        for permission in scopes.permissions():
            out.add(permission_name(permission))
            if permission.resource_type == "*":
                out.update(permission_name(permission, t) for t in self.resource_types)
        if self.include_scopes:
            out.update(s for s in principal.scopes if not is_clinical(s))
        return frozenset(out)


_CONFORMS: PermissionPolicy = SmartPermissions()  # SmartPermissions satisfies the guard's Protocol


@dataclass(frozen=True, slots=True)
class SmartAccess:
    """A verified token's SMART scopes and launch context, ready for ``check``."""

    scopes: ScopeSet
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None

    @classmethod
    def from_principal(cls, principal: Principal) -> SmartAccess:
        """From the ``scope``, ``patient``, ``encounter`` and ``fhirUser`` claims (non-strings ignored)."""
        claims: Mapping[str, object] = principal.claims

        def text(name: str) -> str | None:
            value = claims.get(name)
            return value if isinstance(value, str) and value else None

        return cls(token_scopes(principal), text("patient"), text("encounter"), text("fhirUser"))

    def check(
        self,
        interaction: str,
        resource_type: str,
        *,
        resource: Mapping[str, object] | None = None,
        search_params: Mapping[str, str] | None = None,
        user_access: UserAccess | None = None,
    ) -> Decision:
        return check(
            self.scopes,
            interaction=interaction,
            resource_type=resource_type,
            level_context=self.patient,
            resource=resource,
            search_params=search_params,
            user_access=user_access,
        )

    def require(
        self,
        interaction: str,
        resource_type: str,
        *,
        resource: Mapping[str, object] | None = None,
        search_params: Mapping[str, str] | None = None,
        user_access: UserAccess | None = None,
    ) -> Decision:
        """Like ``check``; raises the guard's InsufficientScope (403) when refused."""
        decision = self.check(
            interaction, resource_type, resource=resource, search_params=search_params, user_access=user_access
        )
        if not decision.allowed:
            raise InsufficientScope(decision.reason)
        return decision
