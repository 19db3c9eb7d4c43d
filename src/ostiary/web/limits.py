"""Request bodies limited while they are read, on every endpoint (RFC 9110 §15.5.14 413 Content Too Large).

A `Content-Length` over the limit is answered 413 before a byte is read; a streamed (chunked) body
is cut as soon as it passes the limit, so a 200 MB POST costs the server at most the limit.
Endpoints keep their own, smaller limits (forms, JSON) on top of this one.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..fhir.errors import fhir_response, operation_outcome
from .errors import PAGE_PATHS, json_response
from .render import render_error_page

__all__ = ["BodyLimitMiddleware", "BodyTooLarge"]


class BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit; the middleware answers 413."""


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length, -1 when it is malformed or repeated with different values, None when absent."""
    values = {v.strip() for k, v in scope["headers"] if k.lower() == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not all(v.isdigit() and len(v) <= 18 for v in values):
        return -1
    return int(values.pop())


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, fhir_path: str | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.fhir_path = fhir_path

    def _refusal(self, scope: Scope, status: int) -> Response:
        path = scope["path"]
        text = (f"the request body is larger than {self.max_bytes} bytes" if status == 413
                else "the Content-Length header is malformed")
        headers = {"Cache-Control": "no-store", "Connection": "close"}
        if self.fhir_path and (path == self.fhir_path or path.startswith(self.fhir_path + "/")):
            return fhir_response(operation_outcome(status, text), status, headers)
        if path.startswith(PAGE_PATHS):
            return render_error_page(scope["app"].state.settings, "invalid_request", text.capitalize() + ".", status)
        return json_response({"error": "invalid_request", "error_description": text}, status=status,
                             headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            await self._refusal(scope, 413 if declared > 0 else 400)(scope, receive, send)
            return
        received = 0
        too_large = started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # whatever the app made of the cut body, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await self._refusal(scope, 413)(scope, receive, send)
