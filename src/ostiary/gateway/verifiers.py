"""One TokenVerifier of ``ostiary.resource`` per audience, all for the configured issuer.

A verifier accepts a token only if its ``aud`` contains that verifier's audience, so a route never
accepts a token meant for another route's API. Verifiers share one connection pool to the issuer, a
client of the trusted class (the issuer's URL is the operator's, not a caller's).
"""

from __future__ import annotations

import httpx

from ..client.auth_methods import ClientSecretBasic
from ..client.secret import Secret
from ..outbound import trusted_client
from ..resource.introspection import Introspection
from ..resource.verifier import TokenVerifier
from .config import GatewayConfig

__all__ = ["Verifiers"]


class Verifiers:
    def __init__(self, config: GatewayConfig, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = config.issuer
        # the issuer is configured by the operator: the trusted class of outbound client (ostiary.outbound)
        self._http = http or trusted_client(timeout=5.0)
        self._owns_http = http is None
        intro = config.introspection
        self._introspection = (
            Introspection(ClientSecretBasic(intro.client_id, Secret(intro.client_secret)), endpoint=intro.endpoint)
            if intro is not None else None
        )
        self._by_audience: dict[str, TokenVerifier] = {}

    def for_audience(self, audience: str) -> TokenVerifier:
        verifier = self._by_audience.get(audience)
        if verifier is None:
            verifier = TokenVerifier(self.issuer, audience, introspection=self._introspection,
                                     async_http=self._http)
            self._by_audience[audience] = verifier
        return verifier

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
