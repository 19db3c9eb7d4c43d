"""The change signal (issue 9 item 10): the SQL version row and revoked users, and the watcher that
turns a new version into cache flushes on this node, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ostiary.server.changes import ChangeWatcher
from ostiary.store.sql.changes import SqlChangeLog
from ostiary.store.sql.engine import make_engine, upgrade


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    await upgrade(eng)
    yield eng
    await eng.dispose()


async def test_bump_increases_the_version_seen_by_every_reader(engine: AsyncEngine) -> None:
    one, other = SqlChangeLog(engine), SqlChangeLog(engine)
    before = await other.version()
    assert await one.bump() == before + 1
    assert await other.version() == before + 1


async def test_revoked_subject_is_recorded_with_a_bump_and_forgotten_after_keep_until(engine: AsyncEngine) -> None:
    log = SqlChangeLog(engine)
    now = int(time.time())
    before = await log.version()
    await log.revoke_subject("user-kept", now, now + 60)
    await log.revoke_subject("user-gone", now - 120, now - 60)
    await log.revoke_subject("user-kept", now + 1, now + 60)  # a second disable moves the mark
    assert await log.version() >= before + 3
    revoked = await log.revoked_subjects(now)
    assert revoked["user-kept"] == now + 1
    assert "user-gone" not in revoked


async def test_watcher_notifies_listeners_only_when_the_version_moved(engine: AsyncEngine) -> None:
    log = SqlChangeLog(engine)
    watcher = ChangeWatcher(log, interval=0.5)
    calls: list[int] = []

    async def listener() -> None:
        calls.append(1)

    watcher.on_change(listener)
    assert await watcher.poll() is True  # the first read loads state but flushes nothing
    assert calls == []
    assert await watcher.poll() is False
    await log.bump()
    assert await watcher.poll() is True
    assert calls == [1]


async def test_watcher_refuses_tokens_issued_up_to_the_revocation_only(engine: AsyncEngine) -> None:
    log = SqlChangeLog(engine)
    watcher = ChangeWatcher(log, interval=0.5)
    now = int(time.time())
    await log.revoke_subject("user-revoked", now, now + 60)
    await watcher.poll()
    assert watcher.revoked({"sub": "user-revoked", "iat": now - 5})
    assert watcher.revoked({"sub": "user-revoked", "iat": now})
    assert not watcher.revoked({"sub": "user-revoked", "iat": now + 1})  # signed in again later
    assert not watcher.revoked({"sub": "someone-else", "iat": now})
    assert not watcher.revoked({"sub": "user-revoked"})  # no iat: judged by the stored revoked mark
