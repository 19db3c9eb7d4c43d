"""In-memory linked identities (the contract of store/federation.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..federation import LinkedIdentity, LinkExists
from .data import MemoryData

__all__ = ["MemoryIdentityLinkStore"]


class MemoryIdentityLinkStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def find(self, provider: str, subject: str) -> LinkedIdentity | None:
        with self._data.lock:
            return self._data.federated_identities.get((provider, subject))

    async def add(self, link: LinkedIdentity) -> None:
        key = (link.provider, link.subject)
        with self._data.lock:
            if key in self._data.federated_identities:
                raise LinkExists(f"{link.provider}:{link.subject}")
            self._data.federated_identities[key] = replace(link, label=link.label[:255])

    async def for_user(self, user_id: str) -> Sequence[LinkedIdentity]:
        with self._data.lock:
            found = [link for link in self._data.federated_identities.values() if link.user_id == user_id]
        return sorted(found, key=lambda link: (link.created_at, link.provider))

    async def touch(self, provider: str, subject: str, now: int) -> None:
        with self._data.lock:
            link = self._data.federated_identities.get((provider, subject))
            if link is not None:
                self._data.federated_identities[(provider, subject)] = replace(link, last_used=now)

    async def remove(self, user_id: str, provider: str, subject: str, *, keep_last: bool = False) -> bool:
        with self._data.lock:
            link = self._data.federated_identities.get((provider, subject))
            if link is None or link.user_id != user_id:
                return False
            if keep_last and sum(1 for other in self._data.federated_identities.values()
                                 if other.user_id == user_id) < 2:
                return False
            del self._data.federated_identities[(provider, subject)]
            return True
