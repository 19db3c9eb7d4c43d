"""WebSocket pass-through for routes with ``websocket = true`` (issue item 6).

The handshake is checked like any request (path, route, GET's scopes, token, rate limit); only then is the
upstream connection opened, with the same identity and forwarding fields, and the caller's handshake
accepted with the subprotocol the upstream chose. Messages are relayed both ways until either side closes.
A refused handshake gets its status and JSON body when the server supports the ASGI denial response,
else a plain 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .asgi import Receive, Scope, Send
from .decision import Decision
from .headers import request_fields
from .paths import upstream_path

__all__ = ["deny_websocket", "relay_websocket"]

log = logging.getLogger("ostiary.gateway")
# the websocket client writes its own handshake fields
_HANDSHAKE = frozenset({b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
                        b"sec-websocket-protocol", b"sec-websocket-accept"})


async def deny_websocket(scope: Scope, send: Send, status: int, document: dict[str, str],
                         headers: dict[str, str]) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = orjson.dumps(document)
        fields = [(b"content-type", b"application/json"), *((k.encode(), v.encode()) for k, v in headers.items())]
        await send({"type": "websocket.http.response.start", "status": status, "headers": fields})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def _to_upstream(receive: Receive, upstream: ClientConnection) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close()
            return
        if message["type"] == "websocket.receive":
            data = message.get("text")
            await upstream.send(data if data is not None else message.get("bytes") or b"")


async def _to_caller(send: Send, upstream: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for data in upstream:
            await send({"type": "websocket.send", **({"text": data} if isinstance(data, str) else {"bytes": data})})
    await send({"type": "websocket.close", "code": upstream.close_code or 1000})


async def relay_websocket(scope: Scope, receive: Receive, send: Send, decision: Decision, request_id: str,
                          address: str) -> int:
    """Relay an allowed handshake; the status for the access log (101, or 502 if the upstream refused)."""
    route, path = decision.route, decision.path
    assert route is not None and path is not None
    if (await receive())["type"] != "websocket.connect":
        return 400
    target = urlsplit(route.upstream)
    raw = upstream_path(route, path, target.path) + (b"?" + scope["query_string"] if scope.get("query_string") else b"")
    url = f"{'wss' if target.scheme == 'https' else 'ws'}://{target.netloc}{raw.decode('latin-1')}"
    fields = request_fields(scope["headers"], route, decision.principal, address=address,
                            scheme="https" if scope.get("scheme") == "wss" else "http", request_id=request_id)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields if k.lower() not in _HANDSHAKE]
    try:
        upstream = await connect(url, additional_headers=headers, subprotocols=scope.get("subprotocols") or None,
                                 proxy=None, open_timeout=route.timeout, compression=None, user_agent_header=None)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        log.warning("upstream WebSocket %s failed: %s (request %s)", route.upstream, type(exc).__name__, request_id)
        await deny_websocket(scope, send, 502, {"error": "bad_gateway", "request_id": request_id},
                             {"x-request-id": request_id})
        return 502
    async with upstream:
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol,
                    "headers": [(b"x-request-id", request_id.encode())]})
        tasks = [asyncio.create_task(_to_upstream(receive, upstream)), asyncio.create_task(_to_caller(send, upstream))]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await task
    return 101
