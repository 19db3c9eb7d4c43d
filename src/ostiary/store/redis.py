"""Redis implementations for ephemeral shared state (OSTIARY_REDIS_URL): replay caches, throttles."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from .identity import ThrottleRule

__all__ = ["RedisLoginThrottle", "RedisReplayCache"]


class RedisReplayCache:
    """first_use by SET NX with an expiry: atomic across every node sharing the Redis."""

    def __init__(self, client: Redis, prefix: str = "ostiary:replay:") -> None:
        self._redis = client
        self._prefix = prefix

    async def first_use(self, key: str, expires_at: int) -> bool:
        ttl = max(1, expires_at - int(time.time()))
        return bool(await self._redis.set(self._prefix + key, b"1", nx=True, ex=ttl))


# One script, run atomically by Redis: the same rule as SqlLoginThrottle.attempt (ThrottleRule.delay).
_ATTEMPT = """
local now, window, free, max_delay = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local next_at = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if count > 0 and next_at > now then return next_at - now end
if count == 0 or next_at + window < now then count = 0 end
count = count + 1
local delay = 0
if count >= free then delay = math.min(2 * 2 ^ math.min(count - free, 30), max_delay) end
redis.call('HSET', KEYS[1], 'count', count, 'next', now + delay)
redis.call('EXPIRE', KEYS[1], delay + window)
return 0
"""

_REFUND = """
if tonumber(redis.call('HGET', KEYS[1], 'count') or '0') > 0 then redis.call('HINCRBY', KEYS[1], 'count', -1) end
return 0
"""


class RedisLoginThrottle:
    """LoginThrottle in Redis hashes; every change is one Lua script (atomic across all nodes)."""

    def __init__(self, client: Redis, prefix: str = "ostiary:throttle:") -> None:
        self._redis = client
        self._prefix = prefix
        self._attempt = client.register_script(_ATTEMPT)
        self._refund = client.register_script(_REFUND)

    async def attempt(self, key: str, rule: ThrottleRule, now: int) -> int:
        wait = await self._attempt(keys=[self._prefix + key], args=[now, rule.window, rule.free, rule.max_delay])
        return int(wait)

    async def refund(self, key: str) -> None:
        await self._refund(keys=[self._prefix + key])

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)
