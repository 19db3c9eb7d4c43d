"""Redis implementations for ephemeral shared state (OSTIARY_REDIS_URL)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

__all__ = ["RedisReplayCache"]


class RedisReplayCache:
    """first_use by SET NX with an expiry: atomic across every node sharing the Redis."""

    def __init__(self, client: Redis, prefix: str = "ostiary:replay:") -> None:
        self._redis = client
        self._prefix = prefix

    async def first_use(self, key: str, expires_at: int) -> bool:
        ttl = max(1, expires_at - int(time.time()))
        return bool(await self._redis.set(self._prefix + key, b"1", nx=True, ex=ttl))
