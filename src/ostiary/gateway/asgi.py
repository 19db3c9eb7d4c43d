"""ASGI types and the gateway's own answers: JSON bodies, never a trace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = ["Receive", "Scope", "Send", "send_bytes", "send_json"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def send_bytes(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]],
                     content_type: bytes = b"application/json", *, head: bool = False) -> None:
    fields = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
              (b"cache-control", b"no-store"), *headers]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def send_json(send: Send, status: int, document: dict[str, Any], headers: dict[str, str] | None = None,
                    *, head: bool = False) -> None:
    fields = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send_bytes(send, status, orjson.dumps(document), fields, head=head)
