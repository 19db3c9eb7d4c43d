"""The provider a request is served by (set on the Starlette app by `web.app`)."""

from __future__ import annotations

from starlette.requests import Request

from ..app.provider import Provider

__all__ = ["provider_of"]


def provider_of(request: Request) -> Provider:
    provider: Provider = request.app.state.provider
    return provider
