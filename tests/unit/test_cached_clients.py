"""The per-node client cache: no DB read on the hot path, one read per refresh, never past its TTL."""

from __future__ import annotations

import asyncio

from ostiary.app.provider import CachedClients
from ostiary.store import Client


class CountingStore:
    def __init__(self) -> None:
        self.reads = 0
        self.name: str | None = "v1"

    async def get(self, client_id: str) -> Client | None:
        self.reads += 1
        await asyncio.sleep(0.01)
        return Client(client_id=client_id, client_name=self.name) if self.name else None


async def test_concurrent_misses_make_one_read():
    store = CountingStore()
    cache = CachedClients(store, ttl=60)  # type: ignore[arg-type]
    found = await asyncio.gather(*(cache.get("a") for _ in range(50)))
    assert store.reads == 1 and {c.client_name for c in found} == {"v1"}


async def test_entry_near_its_end_is_answered_at_once_and_refreshed_once_in_the_background():
    store = CountingStore()
    cache = CachedClients(store, ttl=0.2)  # type: ignore[arg-type]
    await cache.get("a")
    await asyncio.sleep(0.17)  # still fresh, but in the last fifth of its life
    store.name = "v2"
    answers = await asyncio.gather(*(cache.get("a") for _ in range(20)))
    assert {c.client_name for c in answers} == {"v1"}  # nobody waited for the database
    await asyncio.sleep(0.02)
    assert store.reads == 2
    assert (await cache.get("a")).client_name == "v2"


async def test_nothing_is_served_past_its_ttl():
    """A client created, changed or deleted elsewhere is seen once the TTL has passed (negative entries too)."""
    store = CountingStore()
    store.name = None
    cache = CachedClients(store, ttl=0.05)  # type: ignore[arg-type]
    assert await cache.get("a") is None
    await asyncio.sleep(0.06)
    store.name = "created"
    assert (await cache.get("a")).client_name == "created"
