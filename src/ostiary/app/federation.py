"""Wiring of federation: the upstream providers of ``settings.federation`` over the trusted client."""

from __future__ import annotations

import httpx

from ..config import Settings
from ..outbound import trusted_client
from ..server.federation.login import FederationLogin
from ..server.federation.upstream import UpstreamProvider
from ..store.protocols import ReplayCache

__all__ = ["federation_login"]


def federation_login(settings: Settings, replay: ReplayCache,
                     transport: httpx.AsyncBaseTransport | None = None) -> FederationLogin | None:
    """The upstream providers' sign-in, or None when none is configured. Their URLs are the
    administrator's, so the trusted outbound class applies (ostiary.outbound.trusted_client)."""
    if not settings.federation:
        return None
    http = trusted_client(timeout=10.0, transport=transport)
    upstreams = {u.id: UpstreamProvider(u, http) for u in settings.federation}
    return FederationLogin(upstreams, settings.issuer, http, replay, settings.oidc.interaction_lifetime)
