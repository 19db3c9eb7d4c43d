"""uvicorn's httptools protocol with what it lacks against slow clients: a header-read deadline and a
connection cap (docs/security.md, transport and headers). `ostiary serve`, `ostiary gateway` and
`ostiary fhir gateway` all run with it.

A connection must deliver each request's headers within `http.header_timeout` seconds of opening,
or of the request's first byte on a kept-alive connection, else it gets 408 and is closed. Past
`http.max_connections` open connections in a worker, the connection waiting longest for its headers
is dropped (else the new one), so clients that never finish their headers cannot crowd out others.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import ConfigError, HttpSettings, load_settings

__all__ = ["GuardedHttpToolsProtocol"]

_TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@functools.cache
def _limits() -> HttpSettings:
    """Read once per worker process (workers get their settings from the environment). The gateways,
    which have no server settings of their own, get the defaults."""
    try:
        return load_settings().http
    except ConfigError:
        return HttpSettings()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_since = 0.0

    def _arm(self) -> None:
        if self._header_timer is None:
            self._waiting_since = self.loop.time()
            self._header_timer = self.loop.call_later(_limits().header_timeout, self._header_deadline)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        if len(self.connections) > _limits().max_connections:
            waiting = [c for c in self.connections
                       if isinstance(c, GuardedHttpToolsProtocol) and c._header_timer is not None]
            victim = min(waiting, key=lambda c: c._waiting_since, default=self)
            victim._disarm()
            victim.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # the next request on a kept-alive connection: its headers have a deadline too

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
