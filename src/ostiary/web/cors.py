"""CORS for browser-based apps (per-client `allowed_cors_origins`), on errors too."""

from __future__ import annotations

import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..server.provider import Provider

__all__ = ["CorsMiddleware"]

PUBLIC = ("/.well-known/", "/jwks")
CLIENT_BASED = ("/token", "/userinfo", "/revoke", "/introspect")


class CorsMiddleware:
    """Discovery and JWKS are public (`*`); the token-style endpoints answer origins that some client
    registered. Preflight requests are answered here, before routing."""

    def __init__(self, app: ASGIApp, ttl: float = 5.0) -> None:
        self.app = app
        self._ttl = ttl
        self._origins: frozenset[str] = frozenset()
        self._loaded = float("-inf")

    async def _allowed(self, scope: Scope, origin: str) -> bool:
        if time.monotonic() - self._loaded > self._ttl:
            provider: Provider = scope["app"].state.provider
            origins: set[str] = set()
            for client in await provider.clients.list():
                origins.update(client.extra.get("allowed_cors_origins", ()))
            self._origins, self._loaded = frozenset(origins), time.monotonic()
        return origin in self._origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        origin = Headers(scope=scope).get("origin")
        public = path.startswith(PUBLIC) or path.endswith("/.well-known/smart-configuration")
        if origin is None or not (public or path in CLIENT_BASED):
            await self.app(scope, receive, send)
            return
        allow = "*" if public else (origin if await self._allowed(scope, origin) else None)
        if allow is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            methods = "GET" if public else "GET, POST"
            response = Response(status_code=204, headers={
                "Access-Control-Allow-Origin": allow, "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": "Authorization, Content-Type, DPoP",
                "Access-Control-Max-Age": "600", "Vary": "Origin",
            })
            await response(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Access-Control-Allow-Origin"] = allow
                headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
                headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)
