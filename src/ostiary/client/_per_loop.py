"""Objects that belong to one event loop (an ``httpx.AsyncClient``'s connections, an ``asyncio.Lock``).

A guard or token source is shared by the whole app, but the app may run several event loops: a
FastAPI ``TestClient`` used without ``with`` runs every request in a new loop, and threads may run
loops of their own. Each loop gets its own objects; those of loops that have closed are dropped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx

__all__ = ["AsyncClients", "PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._items: dict[asyncio.AbstractEventLoop, T] = {}
        self._lock = threading.Lock()  # loops in several threads may ask at once

    def get(self) -> T:
        """The object of the running loop (created on first use); call from a coroutine."""
        loop = asyncio.get_running_loop()
        with self._lock:
            item = self._items.get(loop)
            if item is None:
                # A closed loop's objects can never be used again (their sockets die with the loop).
                for old in [k for k in self._items if k.is_closed()]:
                    del self._items[old]
                item = self._items[loop] = self._factory()
            return item

    def current(self) -> T | None:
        """The running loop's object if it has one (for closing), without creating it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        with self._lock:
            return self._items.get(loop)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class AsyncClients:
    """An ``httpx.AsyncClient`` per event loop, or the one the caller gave (used as is, on its loop)."""

    def __init__(self, given: httpx.AsyncClient | None, timeout: float, *, follow_redirects: bool = False) -> None:
        self._given = given
        self._clients: PerLoop[httpx.AsyncClient] = PerLoop(
            lambda: httpx.AsyncClient(timeout=timeout, follow_redirects=follow_redirects))

    def get(self) -> httpx.AsyncClient:
        return self._given or self._clients.get()

    async def aclose(self) -> None:
        """Close the given client and the running loop's; those of other (closed) loops are dropped."""
        if self._given is not None:
            await self._given.aclose()
        current = self._clients.current()
        self._clients.clear()
        if current is not None:
            await current.aclose()
