"""What a request may carry, checked while it is read, on every endpoint: its size, and no NUL.

Size (RFC 9110 §15.5.14, 413 Content Too Large): a `Content-Length` over the limit is answered 413
before a byte is read; a streamed (chunked) body is cut as soon as it passes the limit, so a 200 MB
POST costs the server at most the limit. Endpoints keep their own, smaller limits on top.

NUL: PostgreSQL refuses U+0000 in text, and no protocol value needs it, so a NUL in the path, the
query (`%00`), a form body (`%00`) or a JSON body (`\\u0000`) is answered 400 before any endpoint
sees it, the same on every database.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidClientMetadata
from ..fhir.errors import FhirError
from .errors import render_error

__all__ = ["BodyRefused", "RequestLimitsMiddleware"]

_NUL_TEXT = "NUL characters are not allowed in a request"


class BodyRefused(FhirError):
    """Raised from `receive` once the body is refused; the middleware answers `status`. A FhirError, so
    the FHIR API (which logs any other exception as a bug) answers it quietly too."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(status, text)
        self.text = text


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length, -1 when it is malformed or repeated with different values, None when absent."""
    values = {v.strip() for k, v in scope["headers"] if k.lower() == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not all(v.isdigit() and len(v) <= 18 for v in values):
        return -1
    return int(values.pop())


def _nul_markers(scope: Scope) -> tuple[bytes, ...]:
    """How a NUL is written in this request's body, by its content type."""
    mime = next((v for k, v in scope["headers"] if k.lower() == b"content-type"), b"").split(b";")[0].strip().lower()
    if mime == b"application/x-www-form-urlencoded":
        return b"\x00", b"%00"
    if mime.endswith((b"/json", b"+json")):
        return b"\x00", b"\\u0000"
    return (b"\x00",)


class RequestLimitsMiddleware:
    """Refusals are answered by the one renderer, in the kind of the route the request was for."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refusal(self, scope: Scope, receive: Receive, status: int, text: str, *, body: bool = False) -> Response:
        refused: Exception = BodyRefused(status, text)
        if body and status == 400 and scope["path"].startswith("/register"):
            refused = InvalidClientMetadata(text)  # RFC 7591 §3.2.2: a bad registration body is bad metadata
        response = await render_error(refused, scope, receive)
        response.headers["Connection"] = "close"
        return response

    def _head_refusal(self, scope: Scope) -> tuple[int, str] | None:
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            return 400, _NUL_TEXT
        declared = _declared_length(scope)
        if declared is not None and declared < 0:
            return 400, "the Content-Length header is malformed"
        if declared is not None and declared > self.max_bytes:
            return 413, f"the request body is larger than {self.max_bytes} bytes"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._head_refusal(scope)
        if refused is not None:
            await (await self._refusal(scope, receive, *refused))(scope, receive, send)
            return
        markers = _nul_markers(scope)
        received = 0
        tail = b""
        cut: BodyRefused | None = None
        started = False

        async def checked_receive() -> Message:
            nonlocal received, tail, cut
            if cut is not None:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_bytes:
                    cut = BodyRefused(413, f"the request body is larger than {self.max_bytes} bytes")
                elif any(m in chunk or m in tail + chunk[:5] for m in markers):
                    cut = BodyRefused(400, _NUL_TEXT)
                tail = chunk[-5:]
                if cut is not None:
                    raise cut
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut is not None and not started:
                return  # whatever the app made of the refused body, the answer is ours
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, checked_receive, guarded_send)
        except Exception:
            if cut is None:
                raise
        if cut is not None and not started:
            await (await self._refusal(scope, receive, cut.status, cut.text, body=True))(scope, receive, send)
