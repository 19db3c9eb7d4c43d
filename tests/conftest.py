"""Shared fixtures: settings per database backend, the app in-process, clients registered directly."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

ISSUER = "http://127.0.0.1:8000"
PG_HOST, PG_PORT = "127.0.0.1", 5432
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnopq"  # OSTIARY_SECRET_KEY for PostgreSQL tests
REDIS_URL = os.environ.get("OSTIARY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


POSTGRES_UP = port_open(PG_HOST, PG_PORT)
REDIS_UP = port_open("127.0.0.1", 6379)
needs_postgres = pytest.mark.skipif(not POSTGRES_UP, reason="PostgreSQL is not running on 127.0.0.1:5432")
needs_redis = pytest.mark.skipif(not REDIS_UP, reason="Redis is not running on 127.0.0.1:6379")


def run_sync(coro_fn: Any) -> Any:
    """Run a coroutine function to completion from sync code, even while pytest-asyncio's loop runs."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn())).result(timeout=60)


def create_pg_database() -> str:
    """A fresh PostgreSQL database for one test module; returns its URL."""
    import asyncpg

    name = f"ostiary_{uuid.uuid4().hex[:12]}"

    async def run() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="test")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_sync(run)
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"


def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def run() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="test")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_sync(run)


POSTGRES_PARAM = pytest.param("postgres", marks=[pytest.mark.postgres, needs_postgres])


@pytest.fixture(scope="module", params=["sqlite", POSTGRES_PARAM])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@dataclass
class RunningApp:
    app: Any
    http: httpx.AsyncClient
    settings: Any

    @property
    def provider(self) -> Any:
        return self.app.state.provider

    async def add_client(self, **metadata: Any) -> tuple[str, str | None]:
        """Register a client directly; returns (client_id, client_secret)."""
        client_id = metadata.pop("client_id", None)
        metadata.setdefault("grant_types", ["client_credentials"])
        client, issued = await self.provider.registry.create(metadata, client_id=client_id)
        return client.client_id, issued.client_secret


def basic(client_id: str, secret: str) -> dict[str, str]:
    from urllib.parse import quote

    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def settings_for(database_url: str, **overrides: Any) -> Any:
    from ostiary.config import OutboundSettings, RegistrationSettings, ThrottleSettings, load_settings

    overrides.setdefault("issuer", ISSUER)
    # modules share one app and one address and fail client authentication on purpose many times;
    # the throttle itself is tested with its own settings (tests/protocol/test_throttling.py)
    overrides.setdefault("throttle", ThrottleSettings(client_auth_failures=100_000, open_registrations=100_000))
    # the development setting: the tests serve client JWKS and logout receivers on loopback
    overrides.setdefault("outbound", OutboundSettings(allow_loopback=True))
    if database_url.startswith("postgres"):  # required there; SQLite generates one beside the database
        overrides.setdefault("secret_key", TEST_SECRET_KEY)
    overrides.setdefault("demo", False)
    overrides.setdefault("registration_token", "initial-token-for-tests")
    # As docs/clients.md: the operator offers its API scopes to clients registered with the token.
    overrides.setdefault("registration", RegistrationSettings(api_scopes=("api:read", "api:write")))
    return load_settings(env={}, database_url=database_url, **overrides)


async def start_app(settings: Any) -> AsyncIterator[RunningApp]:
    from ostiary.web.app import make_app

    app = make_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield RunningApp(app=app, http=http, settings=settings)


@pytest.fixture(scope="module")
async def running(database_url: str) -> AsyncIterator[RunningApp]:
    async for r in start_app(settings_for(database_url)):
        yield r
