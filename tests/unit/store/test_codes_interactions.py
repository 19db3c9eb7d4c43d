"""Contracts of CodeStore and InteractionStore (ostiary.store.grants): single use, expiry, every backend."""

from __future__ import annotations

import asyncio
import time

import pytest

from ostiary.store.backend import Stores
from ostiary.store.grants import AuthorizationCode

from .conftest import RACERS, uid


def make_code(*, expires_in: int = 60) -> AuthorizationCode:
    return AuthorizationCode(digest=uid("code-"), client_id="c", grant_id=uid("g-"),
                             data={"user": "u", "scope": "openid", "n": 1}, expires_at=int(time.time()) + expires_in)


async def test_code_save_find(stores: Stores) -> None:
    code = make_code()
    await stores.codes.save(code)
    assert await stores.codes.find(code.digest) == code
    assert await stores.codes.find(uid("none-")) is None


async def test_rfc6749_4_1_2_code_is_used_once(stores: Stores) -> None:
    code = make_code()
    await stores.codes.save(code)
    now = int(time.time())
    used = await stores.codes.consume(code.digest, now)
    assert used is not None and used.data == code.data and used.consumed_at == now
    assert await stores.codes.consume(code.digest, now) is None  # a replay
    found = await stores.codes.find(code.digest)
    assert found is not None and found.consumed_at == now  # a replay can be told from garbage (and revoked)
    assert await stores.codes.consume(uid("none-"), now) is None


async def test_expired_code_is_not_consumed(stores: Stores) -> None:
    code = make_code(expires_in=0)
    await stores.codes.save(code)
    assert await stores.codes.consume(code.digest, code.expires_at) is None  # alive only before expires_at
    found = await stores.codes.find(code.digest)
    assert found is not None and found.consumed_at is None


async def test_code_consume_is_atomic_under_concurrency(stores: Stores) -> None:
    code = make_code()
    await stores.codes.save(code)
    now = int(time.time())
    results = await asyncio.gather(*(stores.codes.consume(code.digest, now) for _ in range(RACERS)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].data == code.data and winners[0].consumed_at == now
    found = await stores.codes.find(code.digest)
    assert found is not None and found.consumed_at == now


async def test_interaction_save_get_update_delete(stores: Stores) -> None:
    key, now = uid("i-"), int(time.time())
    await stores.interactions.save(key, {"step": "login", "scopes": ["openid"]}, now + 60)
    assert await stores.interactions.get(key, now) == {"step": "login", "scopes": ["openid"]}
    assert await stores.interactions.update(key, {"step": "consent"}) is True
    assert await stores.interactions.get(key, now) == {"step": "consent"}
    assert await stores.interactions.get(key, now + 60) is None  # expired
    assert await stores.interactions.update(uid("none-"), {}) is False
    await stores.interactions.delete(key)
    assert await stores.interactions.get(key, now) is None
    await stores.interactions.delete(key)  # deleting twice is fine


async def test_interaction_data_round_trips_as_json(stores: Stores) -> None:
    key, now = uid("i-"), int(time.time())
    await stores.interactions.save(key, {"pair": ("a", "b"), "nested": {"n": 1}}, now + 60)
    assert await stores.interactions.get(key, now) == {"pair": ["a", "b"], "nested": {"n": 1}}
    with pytest.raises(TypeError):  # what JSON cannot hold is refused by every backend alike
        await stores.interactions.save(uid("i-"), {"bad": {1, 2}}, now + 60)


async def test_interaction_take_once(stores: Stores) -> None:
    key, now = uid("launch:"), int(time.time())
    await stores.interactions.save(key, {"patient": "p1"}, now + 60)
    assert await stores.interactions.take(key, now) == {"patient": "p1"}
    assert await stores.interactions.take(key, now) is None
    expired = uid("launch:")
    await stores.interactions.save(expired, {"patient": "p2"}, now - 1)
    assert await stores.interactions.take(expired, now) is None


async def test_interaction_take_is_atomic_under_concurrency(stores: Stores) -> None:
    key, now = uid("i-"), int(time.time())
    await stores.interactions.save(key, {"patient": "p1"}, now + 60)
    results = await asyncio.gather(*(stores.interactions.take(key, now) for _ in range(RACERS)))
    assert [r for r in results if r is not None] == [{"patient": "p1"}]
    assert await stores.interactions.get(key, now) is None
