"""CORS for browser apps (SMART apps, SPAs), on errors too.

Which origins: a client's web origins are those of its redirect URIs (an `http` loopback IP literal
with any port, as RFC 8252 §7.3 lets the port vary) plus its `allowed_cors_origins`, plus the
operator's `cors_origins`. Public documents (discovery, JWKS, smart-configuration, the FHIR
CapabilityStatement) answer any origin with `*`. On the token, userinfo and revocation endpoints
and the FHIR API, a preflight is answered for the union of every client's web origins; the actual
response carries `Access-Control-Allow-Origin` only when the origin is one of the client's own: the
client named by `client_id` (or its credentials), or the client the bearer token was issued to. No
credentials mode anywhere, and no CORS at all on /introspect or /register (server-to-server).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..app.provider import Provider
from ..fhir.cors import FHIR_ALLOW_HEADERS as FHIR_ALLOW
from ..fhir.cors import FHIR_EXPOSE_HEADERS as FHIR_EXPOSE
from ..fhir.cors import FHIR_METHODS
from ..server.client_auth import presented_method
from ..server.requests import EndpointRequest
from ..store import Client

__all__ = ["CorsMiddleware", "client_origins", "name_client", "origin_of"]

PUBLIC = ("/.well-known/", "/jwks")
CLIENT_METHODS = {"/token": "POST", "/userinfo": "GET, POST", "/revoke": "POST"}
OAUTH_HEADERS = "Authorization, Content-Type, DPoP"
SCOPE_KEY = "ostiary.cors_client"  # set by routes: the client the request names
LOOPBACK = frozenset({"127.0.0.1", "[::1]"})


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL (default ports dropped); loopback IPs as `http://127.0.0.1:*`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname.lower()
    if parts.scheme == "http" and host in LOOPBACK:
        return f"http://{host}:*"  # any port (RFC 8252 §7.3)
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def client_origins(client: Client) -> frozenset[str]:
    """The client's web origins: from its redirect URIs and its allowed_cors_origins."""
    found = {origin_of(uri) for uri in client.redirect_uris}
    found.update(origin_of(o) for o in client.extra.get("allowed_cors_origins", ()) if isinstance(o, str))
    return frozenset(o for o in found if o)


def _matches(origin: str, origins: Iterable[str]) -> bool:
    normal = origin_of(origin)
    # The browser sends exactly scheme://host[:port]; anything else (a path, "null") never matches.
    return normal is not None and normal in origins and (origin.count("/") == 2)


def name_client(scope: Scope, request: EndpointRequest) -> None:
    """Record which client a form request names (for the actual response's CORS decision).

    Only a cross-origin request has a holder: without an `Origin` header the credentials are read
    once, by the endpoint's client authentication, and not here.
    """
    holder = scope.get(SCOPE_KEY)
    if not isinstance(holder, dict):
        return
    try:
        presented = presented_method(request)
    except Exception:  # malformed credentials: the endpoint answers the error; no client is named
        return
    if presented is not None:
        holder["client_id"] = presented.client_id


class CorsMiddleware:
    """Preflights answered here, before routing; actual responses get their headers on the way out."""

    def __init__(self, app: ASGIApp, ttl: float = 5.0, fhir_path: str = "/fhir",
                 configured: Iterable[str] = ()) -> None:
        self.app = app
        self._ttl = ttl
        self._fhir = fhir_path.rstrip("/")
        self._configured = frozenset(o for o in map(origin_of, configured) if o)
        self._union: frozenset[str] = frozenset()
        self._loaded = float("-inf")
        self._version: int | None = None

    async def _all_origins(self, provider: Provider, origin: str) -> frozenset[str]:
        version = provider.watcher.version
        age = time.monotonic() - self._loaded
        # Reload on a signalled change, after ttl, or (at most once a second) for an origin not yet
        # known: an app registered a moment ago on this node (RFC 7591) is answered without waiting.
        if version != self._version or age > self._ttl or (age > 1.0 and not _matches(origin, self._union)):
            union = set(self._configured)
            for client in await provider.clients.list():
                union.update(client_origins(client))
            self._union, self._loaded, self._version = frozenset(union), time.monotonic(), version
        return self._union

    async def _own(self, provider: Provider, scope: Scope, origin: str) -> bool:
        """Does `origin` belong to the client the request names (form, credentials) or its token's client?"""
        if _matches(origin, self._configured):  # the operator's own apps (the launcher, a portal)
            return True
        holder = scope.get(SCOPE_KEY)
        client_id = holder.get("client_id") if isinstance(holder, dict) else None
        if client_id is None:
            client_id = await _token_client(provider, Headers(scope=scope).get("authorization"))
        if not isinstance(client_id, str):
            return False
        client = await provider.cached_clients.get(client_id)
        return client is not None and _matches(origin, client_origins(client))

    def _kind(self, path: str) -> str | None:
        if path.startswith(PUBLIC) or path.endswith("/.well-known/smart-configuration"):
            return "public"
        if self._fhir and path == self._fhir + "/metadata":
            return "public"
        if path in CLIENT_METHODS:
            return "client"
        if self._fhir and (path == self._fhir or path.startswith(self._fhir + "/")):
            return "fhir"
        return None  # /introspect, /register, pages: no CORS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = Headers(scope=scope).get("origin") if scope["type"] == "http" else None
        kind = self._kind(scope["path"]) if origin is not None else None
        if origin is None or kind is None:
            await self.app(scope, receive, send)
            return
        fhir = kind == "fhir" or scope["path"].startswith(self._fhir + "/")
        provider: Provider = scope["app"].state.provider  # now: a mounted app replaces scope["app"]
        if scope["method"] == "OPTIONS" and "access-control-request-method" in Headers(scope=scope):
            allow = "*" if kind == "public" else origin
            if kind != "public" and not _matches(origin, await self._all_origins(provider, origin)):
                await self.app(scope, receive, send)
                return
            methods = "GET" if kind == "public" else FHIR_METHODS if kind == "fhir" else CLIENT_METHODS[scope["path"]]
            response = Response(status_code=204, headers={
                "Access-Control-Allow-Origin": allow, "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": FHIR_ALLOW if fhir else OAUTH_HEADERS,
                "Access-Control-Max-Age": "600", "Vary": "Origin",
            })
            await response(scope, receive, send)
            return
        scope[SCOPE_KEY] = {}  # a holder: shared even where a middleware copies the scope

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.add_vary_header("Origin")
                allowed = kind == "public" or await self._own(provider, scope, origin)
                if allowed:
                    headers["Access-Control-Allow-Origin"] = "*" if kind == "public" else origin
                    headers["Access-Control-Expose-Headers"] = FHIR_EXPOSE if fhir else "WWW-Authenticate"
            await send(message)

        await self.app(scope, receive, with_cors)


async def _token_client(provider: Provider, authorization: str | None) -> Any:
    """The client a bearer token was issued to (None for no token or one this server does not know)."""
    if not authorization or authorization[:7].lower() != "bearer ":
        return None
    found = await provider.inspector.find(authorization[7:].strip())
    return found.client_id if found is not None else None
