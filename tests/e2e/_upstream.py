"""A small upstream that records what it receives: `python -m tests.e2e._upstream PORT`.

Every request is answered with a JSON echo of its method, raw path, query, header fields (in order, with
their original spelling) and body size, and appended to a log that `GET /__log` on the upstream itself
returns (and `DELETE /__log` clears). `/.../slow` answers after 3 s; `/.../big` streams 1 MiB.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
import uvicorn

LOG: list[dict[str, Any]] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    raw_path = scope.get("raw_path") or scope["path"].encode()
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    if raw_path == b"/__log":
        if scope["method"] == "DELETE":
            LOG.clear()
        body = orjson.dumps(LOG)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    record = {"method": scope["method"], "path": raw_path.decode("latin-1"),
              "query": scope["query_string"].decode("latin-1"),
              "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
              "body_size": size}
    LOG.append(record)
    if raw_path.endswith(b"/slow"):
        await asyncio.sleep(3)
    headers = [(b"content-type", b"application/json"), (b"connection", b"x-secret-hop"), (b"x-secret-hop", b"1"),
               (b"x-upstream", b"yes")]
    if raw_path.endswith(b"/big"):
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(16):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(record)})


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept, say what the handshake carried, then echo every message until the caller closes."""
    await receive()
    protocols = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": protocols[0] if protocols else None})
    await send({"type": "websocket.send", "text": orjson.dumps({
        "path": (scope.get("raw_path") or b"").decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]}).decode()})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": "echo:" + (message.get("text") or "")})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
