"""In-memory clients, signing keys, replay cache and server state."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import replace

from ...keys import KeyStatus, SigningKey
from ..protocols import Client, ClientExists
from .data import MemoryData, copy_json

__all__ = ["MemoryClientStore", "MemoryKeyStore", "MemoryReplayCache", "MemoryStateStore"]


class MemoryClientStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def get(self, client_id: str) -> Client | None:
        with self._data.lock:
            record = self._data.clients.get(client_id)
        return Client.from_record(copy_json(record)) if record is not None else None

    async def list(self) -> Sequence[Client]:
        with self._data.lock:
            records = [self._data.clients[k] for k in sorted(self._data.clients)]
        return [Client.from_record(copy_json(r)) for r in records]

    async def create(self, client: Client) -> None:
        record = copy_json(client.to_record())
        with self._data.lock:
            if client.client_id in self._data.clients:
                raise ClientExists(client.client_id)
            self._data.clients[client.client_id] = record

    async def update(self, client: Client) -> bool:
        record = copy_json(client.to_record())
        with self._data.lock:
            old = self._data.clients.get(client.client_id)
            if old is None:
                return False
            record["created_at"] = old["created_at"]  # creation time is never rewritten
            self._data.clients[client.client_id] = record
        return True

    async def delete(self, client_id: str) -> bool:
        with self._data.lock:
            for digest in [d for d, t in self._data.tokens.items() if t.client_id == client_id]:
                del self._data.tokens[digest]
            return self._data.clients.pop(client_id, None) is not None


def _at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class MemoryKeyStore:
    """Signing keys kept as objects: nothing leaves the process, so nothing is sealed."""

    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def list(self) -> Sequence[SigningKey]:
        with self._data.lock:
            keys = list(self._data.keys.values())
        return sorted(keys, key=lambda k: (int(k.created_at.timestamp()), k.kid))

    async def add(self, key: SigningKey) -> bool:
        with self._data.lock:
            if key.kid in self._data.keys:
                return False
            # whole seconds, as the SQL column keeps them (the order of keys made in one second is by kid)
            self._data.keys[key.kid] = replace(
                key, created_at=_at(int(key.created_at.timestamp())),
                publish_until=_at(int(key.publish_until.timestamp())) if key.publish_until else None)
        return True

    async def set_status(self, kid: str, status: KeyStatus, publish_until: int | None = None) -> bool:
        with self._data.lock:
            key = self._data.keys.get(kid)
            if key is None:
                return False
            until = _at(publish_until) if publish_until is not None else None
            self._data.keys[kid] = replace(key, status=status, publish_until=until)
        return True

    async def delete(self, kid: str) -> bool:
        with self._data.lock:
            return self._data.keys.pop(kid, None) is not None


class MemoryReplayCache:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def first_use(self, key: str, expires_at: int) -> bool:
        now = int(time.time())
        with self._data.lock:
            until = self._data.replay.get(key)
            if until is not None and until >= now:  # an expired entry may be reused, as in SQL
                return False
            self._data.replay[key] = expires_at
        return True


class MemoryStateStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def get_or_create(self, name: str, value: str) -> str:
        with self._data.lock:
            return self._data.state.setdefault(name, value)
