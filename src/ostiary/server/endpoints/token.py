"""The token endpoint (RFC 6749 §3.2): authenticate the client, then the grant decides."""

from __future__ import annotations

import logging
from typing import Any

from ...errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from ..audit import audit
from ..client_auth import ClientAuthenticator
from ..grants import GrantTable
from ..requests import EndpointRequest

__all__ = ["TokenEndpoint"]


class TokenEndpoint:
    def __init__(self, authenticator: ClientAuthenticator, grants: GrantTable) -> None:
        self._authenticator = authenticator
        self._grants = grants

    async def handle(self, request: EndpointRequest) -> dict[str, Any]:
        grant_type = request.get("grant_type")
        if not grant_type:
            raise InvalidRequest("grant_type is missing")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
        client = await self._authenticator.authenticate(request, allow_public=True)
        if client.is_public and not grant.public_clients:
            raise UnauthorizedClient(f"public clients cannot use {grant_type}")
        if grant_type not in client.grant_types:
            raise UnauthorizedClient(f"the client is not allowed to use {grant_type}")
        body = await grant.handle(request, client)
        audit("token_issued", level=logging.DEBUG, grant_type=grant_type, client_id=client.client_id,
              scope=body.get("scope"))
        return body
