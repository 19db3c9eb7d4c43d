"""In-memory access facts and change log."""

from __future__ import annotations

from collections.abc import Mapping

from ..access import AccessFacts
from .data import MemoryData

__all__ = ["MemoryAccessStore", "MemoryChangeLog"]


class MemoryAccessStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def get(self, user_id: str) -> AccessFacts | None:
        with self._data.lock:
            return self._data.access.get(user_id)

    async def put(self, facts: AccessFacts) -> None:
        with self._data.lock:
            self._data.access[facts.user_id] = facts

    async def delete(self, user_id: str) -> bool:
        with self._data.lock:
            return self._data.access.pop(user_id, None) is not None


class MemoryChangeLog:
    """The change signal of one node: a version in memory, seen by this process only."""

    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def version(self) -> int:
        with self._data.lock:
            return self._data.version

    async def bump(self) -> int:
        with self._data.lock:
            self._data.version += 1
            return self._data.version

    async def revoke_subject(self, user_id: str, revoked_at: int, keep_until: int) -> None:
        with self._data.lock:
            marks = self._data.revoked_subjects
            for user in [u for u, (_, keep) in marks.items() if keep < revoked_at]:
                del marks[user]
            marks[user_id] = (revoked_at, keep_until)
            self._data.version += 1

    async def revoked_subjects(self, now: int) -> Mapping[str, int]:
        with self._data.lock:
            return {user: at for user, (at, keep) in self._data.revoked_subjects.items() if keep >= now}
