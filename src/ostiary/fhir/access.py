"""Who is calling and what SMART lets them do: the token context and ``smart.policy.check`` per request.

Shared by the FHIR API and the gateway, so both enforce exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidScope
from ..resource.bearer import challenge, extract_token
from ..resource.errors import GuardError, InvalidToken
from ..smart.entitlements import Entitlement, user_access_for
from ..smart.policy import Decision, UserAccess, check
from ..smart.scopes import ScopeSet, SmartScope, is_clinical, parse_clinical
from .errors import FhirError

__all__ = ["Access", "AuthorizeToken", "TokenContext", "UserAccessFactory", "authenticate", "context_from_claims"]


@dataclass(frozen=True, slots=True)
class TokenContext:
    """What an access token grants: its scopes (space-separated), and the SMART launch context.

    ``patient`` is the patient in context (needed by patient/ scopes); ``fhir_user`` the user's FHIR
    resource reference (``Practitioner/123``); ``client_id`` the client the token was issued to;
    ``entitlement`` the patients the token's user may see: without one, user/ scopes grant nothing.
    """

    scopes: str
    patient: str | None = None
    fhir_user: str | None = None
    client_id: str | None = None
    entitlement: Entitlement | None = None


def context_from_claims(claims: Mapping[str, Any]) -> TokenContext:
    """The context of a token from its claims (or introspection answer): ``scope``, ``patient``,
    ``fhirUser``, ``client_id``, ``patient_access`` (only ``{"all": true}``); a claim of the wrong type
    counts as absent."""

    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) else None

    scope = claims.get("scope")
    scopes = " ".join(s for s in scope if isinstance(s, str)) if isinstance(scope, list) else text("scope") or ""
    # A signed claim says only "all patients"; a list of patients is never taken from a token's claims
    # (it comes from introspection, see fhir.smart_gateway).
    access = claims.get("patient_access")
    everyone = isinstance(access, Mapping) and access.get("all") is True
    return TokenContext(scopes, text("patient"), text("fhirUser"), text("client_id"),
                        Entitlement(everyone=True) if everyone else None)


# Returns the context of an active token, or None for an unknown / expired / revoked one. It may
# instead raise an ostiary.resource GuardError (InvalidToken 401, IssuerUnavailable 503, ...).
AuthorizeToken = Callable[[str], Awaitable[TokenContext | None]]
# user/ scopes: per-user access rules for one token; None means user/ scopes grant nothing.
UserAccessFactory = Callable[[TokenContext], UserAccess | None]

_NAMES = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def _clinical(scopes: str) -> tuple[SmartScope, ...]:
    """The FHIR resource scopes in a token; a malformed one grants nothing (fail closed)."""
    out: list[SmartScope] = []
    for token in scopes.split():
        if is_clinical(token):
            try:
                out.append(parse_clinical(token))
            except (InvalidScope, ValueError):
                continue
    return tuple(out)


async def authenticate(realm: str, authorization: list[str], authorize: AuthorizeToken) -> TokenContext:
    """The context of the request's bearer token (RFC 6750 §2.1 header only); raises FhirError 400/401/503."""
    try:
        token = extract_token(authorization)
        context = await authorize(token)
        if context is None:
            raise InvalidToken("the access token is not active")
    except GuardError as exc:
        headers = {"WWW-Authenticate": challenge(realm, exc)} if exc.status_code == 401 else {}
        text = exc.description or ("a bearer access token is required" if exc.status_code == 401 else exc.error)
        raise FhirError(exc.status_code, text, headers=headers) from None
    return context


class Access:
    """One request's permissions; every method raises FhirError 403 when SMART refuses."""

    def __init__(self, context: TokenContext, user_access: UserAccessFactory | None = None) -> None:
        self.context = context
        self.scopes = ScopeSet(_clinical(context.scopes))
        if user_access is not None:
            self.user_access = user_access(context)
        else:
            self.user_access = user_access_for(context.entitlement) if context.entitlement is not None else None

    def reads_own_identity(self, base_url: str, resource_type: str, resource_id: str) -> bool:
        """SMART §fhirUser: a token granted `fhirUser` may read the user's own resource (``Practitioner/1``)
        on this server, whatever its resource scopes say."""
        ref = self.context.fhir_user
        if not ref or "fhirUser" not in self.context.scopes.split():
            return False
        relative = ref.removeprefix(base_url.rstrip("/") + "/") if "://" in ref else ref
        return relative == f"{resource_type}/{resource_id}"

    def require_type(self, interaction: str, resource_type: str) -> None:
        """Some granted scope allows ``interaction`` on the type at all (before loading anything)."""
        if not any(s.allows(interaction) and s.resource_type in ("*", resource_type) for s in self.scopes.clinical):
            raise FhirError(403, f"no granted scope allows {_NAMES[interaction]} on {resource_type}")

    def check(
        self,
        interaction: str,
        resource_type: str,
        resource: Mapping[str, Any] | None = None,
        search_params: Mapping[str, str] | None = None,
    ) -> Decision:
        decision = check(
            self.scopes,
            interaction=interaction,
            resource_type=resource_type,
            level_context=self.context.patient,
            resource=resource,
            search_params=search_params,
            user_access=self.user_access,
        )
        if not decision.allowed:
            raise FhirError(403, decision.reason)
        return decision

    def visible(self, decision: Decision, resource: Mapping[str, Any]) -> bool:
        """Whether a search result granted by ``decision`` may be returned (user/ scopes: the user's patients)."""
        if decision.scope is None or decision.scope.level != "user":
            return True
        return self.user_access is not None and self.user_access("r", str(resource.get("resourceType")), resource)
