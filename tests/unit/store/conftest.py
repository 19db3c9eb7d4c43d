"""The store contract tests: one `stores` fixture, parametrized over every backend.

Each test takes `stores` (an ``ostiary.store.backend.Stores``) and runs on memory, on SQLite and on
PostgreSQL (skipped with a reason when it is not running). A new store Protocol: add its field to
``Stores`` and to each backend, and a test module here using ``stores.<field>``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ostiary.server.credentials import Sealer
from ostiary.store import TokenRecord
from ostiary.store.backend import Stores
from ostiary.store.memory import open_memory
from ostiary.store.sql.backend import open_sql
from tests.conftest import POSTGRES_PARAM, REDIS_URL, TEST_SECRET_KEY, create_pg_database, drop_pg_database, needs_redis

BACKENDS = ["memory", "sqlite", POSTGRES_PARAM]
RACERS = 50  # docs/security.md, concurrency contract: 50 parallel uses of one single-use value


def uid(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:16]


def token_record(client_id: str, *, expires_at: int | None = None, kind: str = "access_token",
                 grant_id: str | None = None, sub: str | None = None) -> TokenRecord:
    return TokenRecord(
        digest=uuid.uuid4().hex + uuid.uuid4().hex, kind=kind, client_id=client_id, jti=uid("jti-"),
        claims={"scope": "api:read", "aud": ["https://api.example.com"], "n": 1, **({"sub": sub} if sub else {})},
        expires_at=expires_at if expires_at is not None else int(time.time()) + 3600, grant_id=grant_id,
    )


@pytest.fixture(scope="session", params=BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stores]:
    if request.param == "memory":
        yield open_memory()
        return
    url = (f"sqlite:///{tmp_path_factory.mktemp('contract') / 'ostiary.db'}" if request.param == "sqlite"
           else create_pg_database())
    opened = open_sql(url, Sealer(TEST_SECRET_KEY))
    try:
        await opened.database.migrate(None)
        yield opened
    finally:
        await opened.database.aclose()
        if request.param != "sqlite":
            drop_pg_database(url)


# For the Protocols that also have a Redis implementation: params=STORE_OR_REDIS, then `or_redis`.
STORE_OR_REDIS = ["store", pytest.param("redis", marks=[pytest.mark.redis, needs_redis])]


async def or_redis(request: pytest.FixtureRequest, stores: Stores, from_store: Any,
                   redis_impl: Callable[[Any, str], Any]) -> AsyncIterator[Any]:
    """The backend's store, or (once, beside the memory backend) its Redis implementation."""
    if request.param == "store":
        yield from_store
        return
    if stores.database.name != "memory":
        pytest.skip("the Redis implementation does not depend on the database: run once (with memory)")
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        yield redis_impl(client, f"ostiary-test:{uid()}:")
    finally:
        await client.aclose()
