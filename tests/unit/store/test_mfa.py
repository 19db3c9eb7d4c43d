"""MfaStore contract (store/mfa.py) on every backend (memory, SQLite, PostgreSQL): each TOTP time step and
each recovery code is accepted once, by one conditional statement (racing submissions: exactly one wins);
an active secret is never replaced by a new enrolment; the secret is sealed at rest and re-sealed by rewrap."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ostiary.server.credentials import Sealer
from ostiary.store.backend import Stores
from ostiary.store.mfa import MfaStore
from ostiary.store.sql.backend import SqlDatabase
from ostiary.store.sql.mfa import SqlMfaStore
from ostiary.store.sql.sealed import SEALED_COLUMNS, SealedColumn, rewrap_sealed
from tests.conftest import TEST_SECRET_KEY

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def store(stores: Stores) -> MfaStore:
    return stores.mfa


def user_id() -> str:
    return "u-" + uuid.uuid4().hex[:12]


async def active(store: MfaStore, step: int = 100) -> str:
    uid = user_id()
    assert await store.begin_totp(uid, SECRET, int(time.time()))
    assert await store.activate_totp(uid, SECRET, step, int(time.time()))
    return uid


async def test_enrolment_is_pending_until_activated(store: MfaStore) -> None:
    uid = user_id()
    assert await store.totp(uid) is None
    assert await store.begin_totp(uid, SECRET, 1000)
    pending = await store.totp(uid)
    assert pending is not None and not pending.active and pending.secret == SECRET
    assert not await store.use_step(uid, 5)  # a pending secret proves nothing
    assert await store.activate_totp(uid, SECRET, 7, 1001)
    now_active = await store.totp(uid)
    assert now_active is not None and now_active.active and now_active.last_step == 7
    assert now_active.activated_at == 1001


async def test_an_active_secret_is_not_replaced_by_a_new_enrolment(store: MfaStore) -> None:
    uid = await active(store)
    assert not await store.begin_totp(uid, "AAAAAAAAAAAAAAAA", 2000)
    stored = await store.totp(uid)
    assert stored is not None and stored.secret == SECRET and stored.active


async def test_activation_of_a_replaced_pending_secret_fails(store: MfaStore) -> None:
    uid = user_id()
    await store.begin_totp(uid, SECRET, 1)
    await store.begin_totp(uid, "AAAAAAAAAAAAAAAA", 2)  # another tab started again
    assert not await store.activate_totp(uid, SECRET, 3, 3)
    assert await store.activate_totp(uid, "AAAAAAAAAAAAAAAA", 3, 3)
    assert not await store.activate_totp(uid, "AAAAAAAAAAAAAAAA", 4, 4)  # already active


async def test_each_time_step_is_accepted_once_and_never_an_earlier_one(store: MfaStore) -> None:
    """RFC 6238 §5.2: a code accepted once is not accepted again (nor one of an earlier step)."""
    uid = await active(store, step=100)
    assert not await store.use_step(uid, 100)  # the activation code itself
    assert await store.use_step(uid, 101)
    assert not await store.use_step(uid, 101)
    assert not await store.use_step(uid, 100)
    assert await store.use_step(uid, 103)


async def test_two_concurrent_submissions_of_one_code_exactly_one_wins(store: MfaStore) -> None:
    for _ in range(5):
        uid = await active(store, step=10)
        results = await asyncio.gather(*(store.use_step(uid, 11) for _ in range(2)))
        assert sorted(results) == [False, True]
    uid = await active(store, step=10)
    results = await asyncio.gather(*(store.use_step(uid, 11) for _ in range(20)))
    assert results.count(True) == 1


async def test_recovery_codes_are_consumed_once_even_when_racing(store: MfaStore) -> None:
    uid = user_id()
    await store.replace_recovery_codes(uid, ["a" * 64, "b" * 64], 1)
    assert await store.recovery_codes_left(uid) == 2
    results = await asyncio.gather(*(store.use_recovery_code(uid, "a" * 64) for _ in range(10)))
    assert results.count(True) == 1
    assert await store.recovery_codes_left(uid) == 1
    assert not await store.use_recovery_code(user_id(), "b" * 64)  # another user's code
    await store.replace_recovery_codes(uid, ["c" * 64], 2)  # regenerated: the old ones stop working
    assert not await store.use_recovery_code(uid, "b" * 64)
    assert await store.remove_recovery_codes(uid) == 1
    assert await store.recovery_codes_left(uid) == 0


async def test_removal(store: MfaStore) -> None:
    uid = await active(store)
    assert await store.remove_totp(uid)
    assert await store.totp(uid) is None
    assert not await store.remove_totp(uid)
    assert not await store.use_step(uid, 10_000)


async def test_the_secret_is_sealed_at_rest_and_rewrapped(stores: Stores, store: MfaStore) -> None:
    if not isinstance(stores.database, SqlDatabase):
        pytest.skip("nothing is at rest in memory")
    engine: AsyncEngine = stores.database.engine
    assert any(c.table == "totp_secrets" and c.column == "sealed_secret" for c in SEALED_COLUMNS)
    uid = await active(store)
    async with engine.connect() as conn:
        raw = (await conn.execute(sa.text("SELECT sealed_secret FROM totp_secrets WHERE user_id = :u"),
                                  {"u": uid})).scalar_one()
    assert SECRET not in raw and raw.startswith("s1.")
    rotated = Sealer("another-secret-key-for-rotation-0123456789abc")
    rotated.remember(TEST_SECRET_KEY)
    column = [SealedColumn("totp_secrets", "user_id", "sealed_secret", legacy="sealed")]
    async with engine.begin() as conn:
        await conn.run_sync(rewrap_sealed, rotated, column)
    moved = await SqlMfaStore(engine, rotated).totp(uid)
    assert moved is not None and moved.secret == SECRET
    unreadable = await SqlMfaStore(engine, Sealer(TEST_SECRET_KEY)).totp(uid)  # the old key alone: no secret
    assert unreadable is not None and unreadable.active and unreadable.secret is None
    back = Sealer(TEST_SECRET_KEY)  # the other tests share this database and its key
    back.remember("another-secret-key-for-rotation-0123456789abc")
    async with engine.begin() as conn:
        await conn.run_sync(rewrap_sealed, back, column)


async def test_deleting_the_user_deletes_their_second_factors(stores: Stores) -> None:
    from ostiary.store.identity import User

    user = User(id=user_id(), username="del-" + uuid.uuid4().hex[:8])
    await stores.users.create(user)
    await stores.mfa.begin_totp(user.id, SECRET, 1)
    await stores.mfa.replace_recovery_codes(user.id, ["d" * 64], 1)
    assert await stores.users.delete(user.id)
    assert await stores.mfa.totp(user.id) is None
    assert await stores.mfa.recovery_codes_left(user.id) == 0
