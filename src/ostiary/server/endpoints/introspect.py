"""Token introspection (RFC 7662): JWT and opaque tokens alike; inactive is just `active: false`."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidRequest
from ..client_auth import ClientAuthenticator
from ..inspection import TokenInspector
from ..requests import EndpointRequest

__all__ = ["IntrospectionEndpoint"]


class IntrospectionEndpoint:
    def __init__(self, authenticator: ClientAuthenticator, inspector: TokenInspector) -> None:
        self._authenticator = authenticator
        self._inspector = inspector

    async def handle(self, request: EndpointRequest) -> dict[str, Any]:
        # RFC 7662 §2.1: the caller must be authorized; public clients may not introspect.
        await self._authenticator.authenticate(request, allow_public=False, token_endpoint=False)
        token = request.get("token")
        if not token:
            raise InvalidRequest("token is missing")
        found = await self._inspector.find(token)
        if found is None or not found.active:
            return {"active": False}  # RFC 7662 §2.2: say nothing more about inactive tokens
        body: dict[str, Any] = dict(found.claims)
        body["active"] = True
        body["token_type"] = "Bearer" if found.kind == "access_token" else found.kind
        return body
