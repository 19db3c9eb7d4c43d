"""Rate limits (issue item 5): fixed windows counted atomically, in memory or in Redis.

A window opens with the first request of a key and lasts ``per_seconds``; each request increments the
counter in one atomic step (a Lua script in Redis, so several gateway processes share one budget
exactly), and the request is allowed while the count is within ``requests``. The answer carries what
the IETF httpapi draft's ``RateLimit-Policy`` and ``RateLimit`` fields need.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .config import RateLimit

__all__ = ["MemoryLimiter", "RateLimiter", "RedisLimiter", "Verdict", "make_limiter", "policy_fields"]


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window closes, rounded up

    def fields(self, name: str, window: float) -> dict[str, str]:
        """RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers-09) and, when refused, Retry-After."""
        headers = policy_fields(name, self.limit, window)
        headers["ratelimit"] = f'"{name}";r={self.remaining};t={self.reset_seconds}'
        if not self.allowed:
            headers["retry-after"] = str(max(1, self.reset_seconds))  # RFC 9110 §10.2.3
        return headers


def policy_fields(name: str, limit: int, window: float) -> dict[str, str]:
    return {"ratelimit-policy": f'"{name}";q={limit};w={math.ceil(window)}'}


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: RateLimit) -> Verdict:
        """Count one request for ``key`` and say whether it is within the limit."""
        ...

    async def aclose(self) -> None: ...


def _verdict(count: int, ttl: float, limit: RateLimit) -> Verdict:
    return Verdict(count <= limit.requests, limit.requests, max(0, limit.requests - count), max(0, math.ceil(ttl)))


class MemoryLimiter:
    """One process's counters; the event loop makes each increment atomic (no await inside)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: RateLimit) -> Verdict:
        now = self._clock()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + limit.per_seconds
            if len(self._windows) >= self._max_keys:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        count += 1
        self._windows[key] = (count, ends)
        return _verdict(count, ends - now, limit)

    async def aclose(self) -> None:
        self._windows.clear()


# INCR and the window's expiry in one atomic step: the first request of a window sets its lifetime.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class RedisLimiter:
    """Counters in Redis under ``prefix``; shared exactly by every gateway using the same server and prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix
        self._script = self._redis.register_script(_HIT)

    async def hit(self, key: str, limit: RateLimit) -> Verdict:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # keys hold client ids and addresses: keep them out
        count, ttl_ms = await self._script(keys=[self._prefix + digest], args=[max(1, int(limit.per_seconds * 1000))])
        return _verdict(int(count), int(ttl_ms) / 1000, limit)

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_limiter(backend: str, prefix: str) -> RateLimiter:
    return MemoryLimiter() if backend == "memory" else RedisLimiter(backend, prefix)
