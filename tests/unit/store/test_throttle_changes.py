"""Contracts of LoginThrottle (ostiary.store.identity) and ChangeLog (ostiary.store.changes), every backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ostiary.store.backend import Stores
from ostiary.store.identity import LoginThrottle, ThrottleRule

from .conftest import STORE_OR_REDIS, or_redis, uid

# -- LoginThrottle (atomic attempt counters; also on Redis) ---------------------------------------


@pytest.fixture(params=STORE_OR_REDIS)
async def throttle(request: pytest.FixtureRequest, stores: Stores) -> AsyncIterator[Any]:
    from ostiary.store.redis import RedisLoginThrottle

    async for counters in or_redis(request, stores, stores.throttle, lambda r, prefix: RedisLoginThrottle(r, prefix)):
        yield counters


async def test_throttle_admits_exactly_the_free_attempts_under_concurrency(throttle: LoginThrottle) -> None:
    rule, key, now = ThrottleRule(free=5, max_delay=60, window=900), uid("user:"), int(time.time())
    waits = await asyncio.gather(*(throttle.attempt(key, rule, now) for _ in range(60)))
    assert waits.count(0) == 5, waits  # 60 racing guesses, 5 checked (not 58)
    assert set(waits) - {0} == {rule.delay(5)}


async def test_throttle_delays_grow_and_are_capped(throttle: LoginThrottle) -> None:
    rule, key, now = ThrottleRule(free=2, max_delay=10, window=900), uid("user:"), 1_000_000
    assert [rule.delay(n) for n in range(1, 7)] == [0, 2, 4, 8, 10, 10]
    assert await throttle.attempt(key, rule, now) == 0
    assert await throttle.attempt(key, rule, now) == 0  # the 2nd: the key now waits 2 s
    assert await throttle.attempt(key, rule, now + 1) == 1
    assert await throttle.attempt(key, rule, now + 2) == 0  # the 3rd: 4 s
    assert await throttle.attempt(key, rule, now + 5) == 1
    assert await throttle.attempt(key, rule, now + 6) == 0
    # a quiet window (no attempt) starts afresh
    assert await throttle.attempt(key, rule, now + 6 + 8 + 901) == 0
    assert await throttle.attempt(key, rule, now + 6 + 8 + 901) == 0
    assert await throttle.attempt(key, rule, now + 6 + 8 + 901) == 2


async def test_throttle_reset_and_refund(throttle: LoginThrottle) -> None:
    rule, key, now = ThrottleRule(free=2, max_delay=60, window=900), uid("ip:"), int(time.time())
    assert await throttle.attempt(key, rule, now) == 0
    await throttle.refund(key)  # that attempt was a success: given back
    assert await throttle.attempt(key, rule, now) == 0
    assert await throttle.attempt(key, rule, now) == 0
    assert await throttle.attempt(key, rule, now) > 0
    await throttle.reset(key)
    assert await throttle.attempt(key, rule, now) == 0
    await throttle.refund(uid("unknown:"))  # nothing to give back: no error


async def test_throttle_keys_are_independent(throttle: LoginThrottle) -> None:
    rule, now = ThrottleRule(free=1, max_delay=60, window=900), int(time.time())
    victim, attacker = uid("user:"), uid("user:")
    assert await throttle.attempt(attacker, rule, now) == 0
    assert await throttle.attempt(attacker, rule, now) > 0
    assert await throttle.attempt(victim, rule, now) == 0  # one key's delays never lock out another


# -- ChangeLog ----------------------------------------------------------------------------------


async def test_change_version_bumps(stores: Stores) -> None:
    before = await stores.changes.version()
    after = await stores.changes.bump()
    assert after > before and await stores.changes.version() == after


async def test_change_bumps_at_once_are_all_counted(stores: Stores) -> None:
    before = await stores.changes.version()
    await asyncio.gather(*(stores.changes.bump() for _ in range(10)))
    assert await stores.changes.version() >= before + 10


async def test_revoke_subject_is_recorded_and_bumps(stores: Stores) -> None:
    user, now = uid("u-"), int(time.time())
    before = await stores.changes.version()
    await stores.changes.revoke_subject(user, now, now + 3600)
    assert await stores.changes.version() > before  # a node that sees the version sees the mark
    assert (await stores.changes.revoked_subjects(now))[user] == now
    await stores.changes.revoke_subject(user, now + 5, now + 7200)  # again: the later one counts
    assert (await stores.changes.revoked_subjects(now))[user] == now + 5
    assert user not in await stores.changes.revoked_subjects(now + 7201)  # kept until keep_until only


async def test_revoke_subject_forgets_marks_past_their_time(stores: Stores) -> None:
    old, new, now = uid("u-"), uid("u-"), int(time.time())
    await stores.changes.revoke_subject(old, now - 100, now - 50)
    await stores.changes.revoke_subject(new, now, now + 60)  # a later command deletes the stale mark
    marks = await stores.changes.revoked_subjects(now - 60)
    assert old not in marks and marks[new] == now
