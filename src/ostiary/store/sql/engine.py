"""Database URLs, engines and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from ..backend import ClientUpgrade
from .sealed import Sealing

__all__ = ["ClientUpgrade", "async_url", "current_revision", "head_revision", "make_engine", "sqlite_file",
           "startup_lock", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def async_url(url: str) -> str:
    """Map the usual URL forms onto the async drivers: sqlite -> aiosqlite, postgresql -> asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (0600); SQLite gives its -wal and -shm
    files the same mode. An existing file keeps its mode."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (None for PostgreSQL and in-memory databases)."""
    full = async_url(url)
    path = make_url(full).database if full.startswith("sqlite") else None
    return Path(path) if path and path != ":memory:" else None


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    full = async_url(url)
    if full.startswith("sqlite"):
        path = make_url(full).database
        file = sqlite_file(url)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            _create_private(file)
        engine = create_async_engine(full, poolclass=NullPool if path == ":memory:" else None)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(full, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _alembic_config(connection: Connection, client_upgrade: ClientUpgrade | None, report: list[str],
                    sealer: Sealing | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["client_upgrade"] = client_upgrade  # data migrations that apply the server's policy
    cfg.attributes["report"] = report
    cfg.attributes["sealer"] = sealer  # migrations that seal existing secrets need the secret key
    return cfg


def _upgrade(connection: Connection, client_upgrade: ClientUpgrade | None, report: list[str],
             sealer: Sealing | None) -> None:
    if connection.dialect.name == "postgresql":
        # Several nodes may start at once: one migrates, the others wait, then find nothing to do.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7403511)")
    command.upgrade(_alembic_config(connection, client_upgrade, report, sealer), "head")


async def upgrade(engine: AsyncEngine, *, client_upgrade: ClientUpgrade | None = None,
                  sealer: Sealing | None = None) -> list[str]:
    """Apply every migration not yet applied (idempotent, safe to run from several nodes).

    Returns the operator's upgrade report: one line per stored item a migration changed (empty when
    nothing was to do). `client_upgrade` is the server's policy for existing clients (migration 0006;
    without it, the default policy). `sealer` holds the secret key; without it, a database holding
    unsealed secrets is not migrated (0005).
    """
    report: list[str] = []
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, client_upgrade, report, sealer)
    return report


STARTUP_LOCK = 7403512  # pg_advisory_lock key of the first-start work (7403511: migrations)


@contextlib.asynccontextmanager
async def startup_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the database-wide first-start lock: nodes starting together bootstrap one at a time.

    PostgreSQL: a session advisory lock (released if the node dies). SQLite: an exclusive lock on
    a file beside the database (every process using one SQLite file runs on one host).
    """
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK})
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK})
                await conn.commit()
        return
    path = engine.url.database
    if not path or path == ":memory:":
        yield  # one process only
        return
    fd = os.open(path + ".startup-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(_lock_file, fd)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock_file(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for 10 s, then raises
                return
            except OSError:
                continue
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
