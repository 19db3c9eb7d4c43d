"""The per-node client cache: no DB read on the hot path, one read per refresh, bounded staleness."""

from __future__ import annotations

import asyncio

from ostiary.server.provider import CachedClients
from ostiary.store import Client


class CountingStore:
    def __init__(self) -> None:
        self.reads = 0
        self.name = "v1"

    async def get(self, client_id: str) -> Client | None:
        self.reads += 1
        await asyncio.sleep(0.01)
        return Client(client_id=client_id, client_name=self.name)


async def test_concurrent_misses_make_one_read():
    store = CountingStore()
    cache = CachedClients(store, ttl=60)  # type: ignore[arg-type]
    found = await asyncio.gather(*(cache.get("a") for _ in range(50)))
    assert store.reads == 1 and {c.client_name for c in found} == {"v1"}


async def test_recently_expired_entry_answers_at_once_and_refreshes_once_in_background():
    store = CountingStore()
    cache = CachedClients(store, ttl=0.05)  # type: ignore[arg-type]
    await cache.get("a")
    await asyncio.sleep(0.07)  # expired, but less than one more ttl ago
    store.name = "v2"
    stale = await asyncio.gather(*(cache.get("a") for _ in range(20)))
    assert {c.client_name for c in stale} == {"v1"}  # nobody waited for the database
    await asyncio.sleep(0.03)
    assert store.reads == 2
    assert (await cache.get("a")).client_name == "v2"


async def test_long_expired_entry_is_read_before_answering():
    """A client deleted or changed long ago must not be served from an old record."""
    store = CountingStore()
    cache = CachedClients(store, ttl=0.02)  # type: ignore[arg-type]
    await cache.get("a")
    await asyncio.sleep(0.06)  # more than two ttl: too old to serve
    store.name = "v2"
    assert (await cache.get("a")).client_name == "v2"
