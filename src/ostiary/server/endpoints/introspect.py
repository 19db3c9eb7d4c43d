"""Token introspection (RFC 7662): JWT and opaque tokens alike; inactive is just `active: false`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ...errors import InvalidRequest
from ...store import Client
from ...store.identity import UserStore
from ..audit import audit
from ..client_auth import ClientAuthenticator, ClientLookup
from ..inspection import KnownToken, TokenInspector
from ..policy.clients import ClientRules
from ..policy.introspection import answer_members, introspection_refusal, token_type
from ..requests import EndpointRequest

__all__ = ["IntrospectionEndpoint", "IntrospectionExtension"]

# Members added to an active access token's answer (given the answer so far), decided at introspection time.
IntrospectionExtension = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]

log = logging.getLogger("ostiary.introspection")
INACTIVE: dict[str, Any] = {"active": False}  # RFC 7662 §2.2: say nothing more about inactive tokens


class IntrospectionEndpoint:
    def __init__(self, authenticator: ClientAuthenticator, inspector: TokenInspector, clients: ClientLookup,
                 rules: ClientRules, users: UserStore, extend: IntrospectionExtension | None = None) -> None:
        self._authenticator = authenticator
        self._inspector = inspector
        self._clients = clients
        self._rules = rules
        self._users = users
        self._extend = extend
        self._warned: set[str] = set()

    async def handle(self, request: EndpointRequest) -> dict[str, Any]:
        # RFC 7662 §2.1: the caller must be authenticated; public clients may not introspect.
        caller = await self._authenticator.authenticate(request, allow_public=False, token_endpoint=False)
        token = request.get("token")
        if not token:
            raise InvalidRequest("token is missing")
        found = await self._inspector.find(token)
        if found is None or not found.active:
            return dict(INACTIVE)
        refusal = introspection_refusal(caller, found.kind, found.claims)
        if refusal is not None:  # RFC 7662 §4: only to callers entitled to know
            self._refused(caller, found, refusal)
            return dict(INACTIVE)
        owner = await self._clients.get(found.client_id)
        if owner is None:
            return dict(INACTIVE)
        return await self._answer(found, owner)

    def _refused(self, caller: Client, found: KnownToken, reason: str) -> None:
        audit("introspection_refused", client_id=caller.client_id, token_client_id=found.client_id,
              jti=found.jti, reason=reason)
        if caller.client_id not in self._warned:  # once per caller: operators find the missing registration
            self._warned.add(caller.client_id)
            log.warning("client %s introspected a token it has no right to see (%s); it was answered "
                        "active=false. Register the API with `ostiary client update %s --resource-server "
                        "--audience <its audience>` (docs/resource-server.md).", caller.client_id, reason,
                        caller.client_id)

    async def _answer(self, found: KnownToken, owner: Client) -> dict[str, Any]:
        body = answer_members(found.claims)
        # Grants made before the policy narrow to what the client may hold now (docs/security.md).
        scope = self._rules.still_held(owner, str(found.claims.get("scope", "")).split())
        body.pop("scope", None)
        if scope:
            body["scope"] = " ".join(scope)
        if self._extend is not None and found.kind == "access_token":
            # SMART 2.2: fhirUser when that scope was granted; the user's patients for user/ scopes (issue 8)
            body.update(await self._extend(body))
        body["active"] = True
        body["token_type"] = token_type(found.kind, found.claims)
        return body
