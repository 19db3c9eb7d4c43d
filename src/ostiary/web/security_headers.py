"""Headers every response gets (docs/security.md, transport and headers).

- `Cache-Control: no-store` unless the endpoint chose its own caching (discovery, JWKS, static files):
  so no response with tokens, codes or patient data is kept by a browser or shared cache.
- `X-Content-Type-Options: nosniff`: JSON is never sniffed into something a browser runs.
- `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`: no page is framed, no URL (codes, state)
  leaks in a Referer.
- `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` unless the answer set its own
  (pages set theirs with a nonce, web/render.py): JSON and error answers can run nothing if opened.
- `Strict-Transport-Security` (RFC 6797) under an https issuer, except on `localhost` and its
  subdomains (browsers send those to this machine too), where it would pin every local port to https
  (browsers ignore it for IP literals anyway); without `includeSubDomains` unless configured, since
  the issuer's siblings are not ours to pin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings

__all__ = ["DEFAULT_CSP", "SecurityHeadersMiddleware", "hsts_value"]

DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def hsts_value(settings: Settings) -> str | None:
    """The Strict-Transport-Security value for this issuer, or None when it must not be sent."""
    issuer = urlsplit(settings.issuer)
    host = issuer.hostname or "localhost"
    local = host == "localhost" or host.endswith(".localhost")
    if issuer.scheme != "https" or local or settings.http.hsts_max_age <= 0:
        return None
    value = f"max-age={settings.http.hsts_max_age}"
    return value + "; includeSubDomains" if settings.http.hsts_include_subdomains else value


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: str | None, cacheable_prefixes: tuple[str, ...] = ("/static/",)) -> None:
        self.app = app
        self.hsts = hsts
        self.cacheable_prefixes = cacheable_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(self.cacheable_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
                if not cacheable and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = self.hsts
            await send(message)

        await self.app(scope, receive, send_with_headers)
