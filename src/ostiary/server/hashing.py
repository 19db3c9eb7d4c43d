"""Password hashing off the event loop: argon2id (64 MiB, ~0.1-0.3 s each) in threads, a few at a
time, with a bounded queue so a flood of logins is answered 429 instead of exhausting memory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["HashingBusy", "HashingPool"]

P = ParamSpec("P")
T = TypeVar("T")


class HashingBusy(Exception):
    """More password checks are waiting than the queue allows; try again in a moment."""


class HashingPool:
    def __init__(self, concurrency: int = 0, queue: int = 32) -> None:
        """`concurrency` hashes at once (0: the number of cores); at most `queue` callers waiting."""
        self.concurrency = concurrency or os.cpu_count() or 1
        self._slots = asyncio.Semaphore(self.concurrency)
        self._queue = queue
        self._waiting = 0

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """fn(*args) in a worker thread; raises HashingBusy at once when the queue is full."""
        if self._slots.locked() and self._waiting >= self._queue:
            raise HashingBusy
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self._slots.release()
