"""Noticing changes made elsewhere (a CLI command, another node) within a second, off the hot path.

Every management change bumps one version number in the database (store.changes). Each node reads
that number in the background every `interval` seconds; when it moved, the node drops its cached
clients and keys and reloads the list of users whose tokens were ended. Requests never wait for
this read: the token endpoint's hot path gains no query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from ..store.changes import ChangeLog

__all__ = ["ChangeWatcher"]

log = logging.getLogger("ostiary")

Listener = Callable[[], Awaitable[None]]


class ChangeWatcher:
    def __init__(self, changes: ChangeLog, interval: float) -> None:
        self._changes = changes
        self._interval = interval
        self._version: int | None = None
        self._listeners: list[Listener] = []
        self._revoked: Mapping[str, int] = {}

    @property
    def version(self) -> int | None:
        """The last version read (None before the first read): caches keyed by it reload on a change."""
        return self._version

    def on_change(self, listener: Listener) -> None:
        """Run `listener` on this node whenever a change was signalled."""
        self._listeners.append(listener)

    def revoked(self, claims: Mapping[str, object]) -> bool:
        """True if the token's user had every token ended after this token was issued (no I/O)."""
        sub, iat = claims.get("sub"), claims.get("iat")
        if not isinstance(sub, str) or sub not in self._revoked:
            return False
        # A token without `iat` (a stored refresh token's facts) is judged by its stored revoked mark.
        return isinstance(iat, int | float) and iat <= self._revoked[sub]

    async def poll(self) -> bool:
        """Read the version once; on a change, reload and notify. True if something changed."""
        version = await self._changes.version()
        if version == self._version:
            return False
        self._revoked = await self._changes.revoked_subjects(int(time.time()))
        first = self._version is None
        self._version = version
        if not first:
            for listener in self._listeners:
                await listener()
        return True

    async def run(self) -> None:
        """Poll forever (the app's lifespan starts and cancels it); a failed read is retried next round."""
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the change signal failed")
            await asyncio.sleep(self._interval)
