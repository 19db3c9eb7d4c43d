"""Grant types: one module each, registered in a table keyed by grant_type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from ...store import Client
from ..requests import EndpointRequest

__all__ = ["Grant", "GrantTable"]


class Grant(Protocol):
    grant_type: ClassVar[str]
    # Whether a public client (token_endpoint_auth_method "none") may use this grant.
    public_clients: ClassVar[bool]

    async def handle(self, request: EndpointRequest, client: Client) -> dict[str, Any]:
        """The token response body; raises OAuthError."""


GrantTable = Mapping[str, Grant]
