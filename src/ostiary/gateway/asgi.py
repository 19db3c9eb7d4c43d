"""ASGI types and the gateway's own answers: JSON bodies, never a trace."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from typing import Any

import orjson

__all__ = ["Receive", "Scope", "Send", "send_bytes", "send_json"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


_date: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The Date field for the gateway's own answers (RFC 9110 §6.6.1), formatted once a second.

    Proxied answers carry the upstream's Date, so the server's own is switched off.
    """
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True).encode())
    return _date[1]


async def send_bytes(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]],
                     content_type: bytes = b"application/json", *, head: bool = False) -> None:
    fields = [(b"date", http_date()), (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
              (b"cache-control", b"no-store"), *headers]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def send_json(send: Send, status: int, document: dict[str, Any], headers: dict[str, str] | None = None,
                    *, head: bool = False) -> None:
    fields = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send_bytes(send, status, orjson.dumps(document), fields, head=head)
