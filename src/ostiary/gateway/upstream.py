"""A lean HTTP/1.1 client for upstreams: h11 over asyncio streams, with a keep-alive pool per upstream.

The general-purpose client (httpx) costs more per request than the whole edge check; a proxy needs only
one request at a time per connection, streamed both ways. h11 does the parsing and framing (RFC 9112),
so message boundaries are never guessed here. Errors:

UpstreamError
 ├── UpstreamUnreachable   connecting failed (502)
 ├── UpstreamTimeout       connecting or a read took longer than the route's timeout (504)
 └── UpstreamBroken        the connection failed or the answer was malformed mid-way (502, or cut short)
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h11

__all__ = ["UpstreamBroken", "UpstreamError", "UpstreamPool", "UpstreamResponse", "UpstreamTimeout",
           "UpstreamUnreachable"]

_READ = 65536
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"})  # RFC 9110 §9.2.2: safe to retry


class UpstreamError(Exception):
    """The upstream could not be used for this request."""


class UpstreamUnreachable(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamBroken(UpstreamError):
    pass


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0
    reused: bool = False

    def usable(self, now: float, keepalive: float) -> bool:
        return (now - self.idle_since < keepalive and not self.reader.at_eof()
                and not self.writer.transport.is_closing())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


Origin = tuple[str, str, int]  # scheme, host, port


class UpstreamPool:
    """Keep-alive connections per origin; ``request`` sends one request and returns the streamed answer."""

    def __init__(self, max_idle: int = 200, keepalive: float = 30.0) -> None:
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._max_idle, self._keepalive = max_idle, keepalive
        self._tls = ssl.create_default_context()

    async def _connect(self, origin: Origin, read_timeout: float) -> _Connection:
        scheme, host, port = origin
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=self._tls if scheme == "https" else None, limit=_READ), read_timeout)
        except TimeoutError:
            raise UpstreamTimeout("connecting timed out") from None
        except OSError as exc:
            raise UpstreamUnreachable(type(exc).__name__) from None
        return _Connection(reader, writer)

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now, self._keepalive):
                conn.reused = True
                return conn
            conn.close()
        return None

    def _give_back(self, origin: Origin, conn: _Connection) -> None:
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            conn.idle_since = time.monotonic()
            idle = self._idle.setdefault(origin, deque())
            if len(idle) < self._max_idle:
                idle.append(conn)
                return
        conn.close()

    async def request(self, origin: Origin, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]],
                      body: AsyncIterator[bytes] | None, read_timeout: float) -> UpstreamResponse:
        """Send the request (the body streamed); the answer's head, with its body still to read."""
        conn = self._take(origin)
        if conn is not None and body is None and method in _IDEMPOTENT:
            try:  # an idle connection the upstream has just closed: one retry on a fresh one is safe here
                return await self._exchange(origin, conn, method, target, headers, None, read_timeout)
            except UpstreamBroken:
                conn = None
        if conn is None:
            conn = await self._connect(origin, read_timeout)
        return await self._exchange(origin, conn, method, target, headers, body, read_timeout)

    async def _exchange(self, origin: Origin, conn: _Connection, method: bytes, target: bytes,
                        headers: list[tuple[bytes, bytes]], body: AsyncIterator[bytes] | None,
                        read_timeout: float) -> UpstreamResponse:
        try:
            conn.writer.write(conn.h11.send(h11.Request(method=method, target=target, headers=headers)) or b"")
            if body is not None:
                async for chunk in body:
                    conn.writer.write(conn.h11.send(h11.Data(data=chunk)) or b"")
                    await asyncio.wait_for(conn.writer.drain(), read_timeout)
            conn.writer.write(conn.h11.send(h11.EndOfMessage()) or b"")
            response = UpstreamResponse(self, origin, conn, read_timeout)
            await response.start()
            return response
        except TimeoutError:
            conn.close()
            raise UpstreamTimeout("the upstream did not answer in time") from None
        except (OSError, h11.ProtocolError, UpstreamBroken) as exc:
            conn.close()
            raise UpstreamBroken(type(exc).__name__) from None
        except BaseException:
            conn.close()
            raise

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


class UpstreamResponse:
    """The answer: ``status`` and ``headers`` now, the body through ``stream()``; ``aclose()`` always."""

    def __init__(self, pool: UpstreamPool, origin: Origin, conn: _Connection, timeout: float) -> None:
        self._pool, self._origin, self._conn, self._timeout = pool, origin, conn, timeout
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._done = False
        self._closed = False

    async def _event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self._conn.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self._conn.reader.read(_READ), self._timeout)
            self._conn.h11.receive_data(data)

    async def start(self) -> None:
        while True:
            event = await self._event()
            if isinstance(event, h11.InformationalResponse):
                continue  # 1xx (RFC 9110 §15.2): the final answer follows
            if not isinstance(event, h11.Response):
                raise UpstreamBroken("the connection closed before an answer")
            self.status = event.status_code
            self.headers = list(event.headers)
            return

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            while not self._done:
                event = await self._event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._done = True
                else:
                    raise UpstreamBroken("the answer ended early")
        except TimeoutError:
            raise UpstreamTimeout("the upstream stopped sending") from None
        except (OSError, h11.ProtocolError) as exc:
            raise UpstreamBroken(type(exc).__name__) from None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._done:
            self._pool._give_back(self._origin, self._conn)
        else:
            self._conn.close()
