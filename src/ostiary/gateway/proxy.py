"""Forwarding an allowed request (issue item 6): bodies streamed both ways over pooled connections.

The request body is streamed to the upstream while being counted against the route's limit; the answer
is streamed back as it arrives. An upstream that cannot be reached gets 502, one that is too slow 504,
both as JSON with the request id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from .asgi import Receive, Scope, Send, send_json
from .config import Route
from .decision import Decision
from .headers import request_fields, response_fields
from .internal_jwt import INTERNAL_JWT_HEADER
from .paths import upstream_path
from .upstream import UpstreamError, UpstreamPool, UpstreamResponse, UpstreamTimeout, UpstreamUnreachable

__all__ = ["BodyTooLarge", "Forwarder", "Outcome"]

log = logging.getLogger("ostiary.gateway")


class BodyTooLarge(Exception):
    """The request body is larger than the route allows."""


class CallerGone(Exception):
    """The caller disconnected while sending its body."""


@dataclass(slots=True)
class Outcome:
    status: int
    upstream_error: str = ""


def _named(fields: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in fields}


def _body_framing(fields: list[tuple[bytes, bytes]]) -> tuple[bool, int | None, bool]:
    """Whether the request has a body, its Content-Length if declared (-1 if malformed), whether chunked."""
    length: int | None = None
    chunked = False
    for name, value in fields:
        lower = name.lower()
        if lower == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif lower == b"transfer-encoding":
            chunked = True
    if chunked:
        length = None
    return chunked or bool(length), length, chunked


class Forwarder:
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool

    @staticmethod
    async def _body(receive: Receive, limit: int) -> AsyncIterator[bytes]:
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise CallerGone()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge()
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def forward(self, scope: Scope, receive: Receive, send: Send, decision: Decision,
                      extra: list[tuple[bytes, bytes]], request_id: str, address: str,
                      internal_jwt: str | None = None) -> Outcome:
        route, path = decision.route, decision.path
        assert route is not None and path is not None
        target = urlsplit(route.upstream)
        raw = upstream_path(route, path, target.path)
        if scope.get("query_string"):
            raw += b"?" + scope["query_string"]
        fields = request_fields(scope["headers"], route, decision.principal, address=address,
                                scheme=scope.get("scheme", "http"), request_id=request_id)
        fields.insert(0, (b"host", target.netloc.encode("latin-1")))
        if internal_jwt is not None:
            fields.append((INTERNAL_JWT_HEADER.encode(), internal_jwt.encode()))
        has_body, length, chunked = _body_framing(scope["headers"])
        if length is not None and (length < 0 or length > route.max_body_bytes):
            status = 413 if length > 0 else 400
            await send_json(send, status, {"error": "invalid_request", "error_description":
                                           "request body too large" if status == 413 else "bad Content-Length",
                                           "request_id": request_id}, _named(extra))
            return Outcome(status)
        if chunked:  # RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; forward one framing only
            fields = [(k, v) for k, v in fields if k.lower() != b"content-length"]
            fields.append((b"transfer-encoding", b"chunked"))
        origin = (target.scheme, target.hostname or "", target.port or (443 if target.scheme == "https" else 80))
        try:
            upstream = await self.pool.request(origin, scope["method"].encode(), raw, fields,
                                               self._body(receive, route.max_body_bytes) if has_body else None,
                                               route.timeout)
        except BodyTooLarge:
            await send_json(send, 413, {"error": "invalid_request", "error_description": "request body too large",
                                        "request_id": request_id}, _named(extra))
            return Outcome(413)
        except CallerGone:
            return Outcome(499)
        except UpstreamTimeout:
            return await self._failed(send, request_id, extra, 504, "timeout")
        except UpstreamError as exc:
            log.warning("upstream %s failed: %s (request %s)", route.upstream, exc, request_id)
            return await self._failed(send, request_id, extra, 502,
                                      "unreachable" if isinstance(exc, UpstreamUnreachable) else "broken")
        return await self._relay(send, route, upstream, extra, request_id)

    @staticmethod
    async def _relay(send: Send, route: Route, upstream: UpstreamResponse, extra: list[tuple[bytes, bytes]],
                     request_id: str) -> Outcome:
        try:
            headers = response_fields(upstream.headers) + extra
            await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
            async for chunk in upstream.stream():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except UpstreamError as exc:  # the answer had started: all we can do is cut it short
            log.warning("upstream %s broke off: %s (request %s)", route.upstream, exc, request_id)
            return Outcome(upstream.status, "broken")
        finally:
            await upstream.aclose()
        return Outcome(upstream.status)

    @staticmethod
    async def _failed(send: Send, request_id: str, extra: list[tuple[bytes, bytes]], status: int,
                      kind: str) -> Outcome:
        description = "the upstream did not answer in time" if status == 504 else "the upstream cannot be reached"
        await send_json(send, status, {"error": "bad_gateway" if status == 502 else "gateway_timeout",
                                       "error_description": description, "request_id": request_id}, _named(extra))
        return Outcome(status, kind)
