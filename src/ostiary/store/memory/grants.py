"""In-memory authorization codes and interactions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..grants import AuthorizationCode
from .data import MemoryData, copy_json

__all__ = ["MemoryCodeStore", "MemoryInteractionStore"]


class MemoryCodeStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def save(self, code: AuthorizationCode) -> None:
        stored = replace(code, data=copy_json(code.data), consumed_at=None)
        with self._data.lock:
            if code.digest in self._data.codes:
                raise ValueError("a code with this digest is already stored")
            self._data.codes[code.digest] = stored

    async def consume(self, digest: str, now: int) -> AuthorizationCode | None:
        with self._data.lock:  # the check and the mark are one step (RFC 6749 §4.1.2: used once)
            code = self._data.codes.get(digest)
            if code is None or code.consumed_at is not None or code.expires_at <= now:
                return None
            used = replace(code, consumed_at=now)
            self._data.codes[digest] = used
        return replace(used, data=copy_json(used.data))

    async def find(self, digest: str) -> AuthorizationCode | None:
        with self._data.lock:
            code = self._data.codes.get(digest)
        return replace(code, data=copy_json(code.data)) if code is not None else None


class MemoryInteractionStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def save(self, interaction_id: str, data: Mapping[str, Any], expires_at: int) -> None:
        stored = copy_json(data)
        with self._data.lock:
            if interaction_id in self._data.interactions:
                raise ValueError("an interaction with this id is already stored")
            self._data.interactions[interaction_id] = (stored, expires_at)

    async def get(self, interaction_id: str, now: int) -> Mapping[str, Any] | None:
        with self._data.lock:
            entry = self._data.interactions.get(interaction_id)
        return copy_json(entry[0]) if entry is not None and entry[1] > now else None

    async def update(self, interaction_id: str, data: Mapping[str, Any]) -> bool:
        stored = copy_json(data)
        with self._data.lock:
            entry = self._data.interactions.get(interaction_id)
            if entry is None:
                return False
            self._data.interactions[interaction_id] = (stored, entry[1])
        return True

    async def delete(self, interaction_id: str) -> None:
        with self._data.lock:
            self._data.interactions.pop(interaction_id, None)

    async def take(self, interaction_id: str, now: int) -> Mapping[str, Any] | None:
        with self._data.lock:  # the check and the removal are one step: one of racing callers wins
            entry = self._data.interactions.get(interaction_id)
            if entry is None or entry[1] <= now:
                return None
            del self._data.interactions[interaction_id]
        return copy_json(entry[0])
