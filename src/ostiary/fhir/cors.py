"""CORS for a FHIR endpoint whose browser origins are configured (the FHIR gateway, issue 9 item 2).

The gateway verifies tokens of an issuer it does not run, so it cannot know which origin belongs to
which client: the operator lists the origins of the browser apps it serves. `/metadata` answers any
origin. The headers allowed and exposed are those a SMART app needs (the built-in API uses the same).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FHIR_ALLOW_HEADERS", "FHIR_EXPOSE_HEADERS", "FHIR_METHODS", "FhirCors"]

FHIR_METHODS = "GET, POST, PUT, DELETE"
FHIR_ALLOW_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, Prefer"
FHIR_EXPOSE_HEADERS = "Location, ETag, Content-Location, WWW-Authenticate"


class FhirCors:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(o.rstrip("/") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = Headers(scope=scope).get("origin") if scope["type"] == "http" else None
        # public documents: the CapabilityStatement and (the FHIR gateway's) SMART configuration
        public = scope.get("path", "").rstrip("/").endswith(("/metadata", "/.well-known/smart-configuration"))
        allow = "*" if public else origin if origin in self.origins else None
        if origin is None or allow is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in Headers(scope=scope):
            await Response(status_code=204, headers={
                "Access-Control-Allow-Origin": allow, "Access-Control-Allow-Methods": FHIR_METHODS,
                "Access-Control-Allow-Headers": FHIR_ALLOW_HEADERS, "Access-Control-Max-Age": "600",
                "Vary": "Origin"})(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Access-Control-Allow-Origin"] = allow
                headers["Access-Control-Expose-Headers"] = FHIR_EXPOSE_HEADERS
                headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)
