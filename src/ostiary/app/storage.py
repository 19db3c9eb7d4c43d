"""The storage backend named by ``database_url``: SQL (SQLite, PostgreSQL) or memory (``memory:``)."""

from __future__ import annotations

from dataclasses import replace

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from ..config import ConfigError, Settings
from ..store.backend import Database, Stores
from ..store.memory import MEMORY_URL, open_memory
from ..store.redis import RedisLoginThrottle, RedisReplayCache
from ..store.sql.backend import SqlDatabase, open_sql
from ..store.sql.sealed import Sealing

__all__ = ["open_stores", "sql_engine"]


def open_stores(settings: Settings, sealer: Sealing, redis: Redis | None = None) -> Stores:
    """Every store for `settings`; with Redis, the replay cache and throttle counters live there."""
    stores = open_memory() if settings.database_url == MEMORY_URL else open_sql(settings.database_url, sealer)
    if redis is not None:
        stores = replace(stores, replay=RedisReplayCache(redis), throttle=RedisLoginThrottle(redis))
    return stores


def sql_engine(database: Database) -> AsyncEngine:
    """The SQL engine, for what only SQL serves (FHIR data, rewrapping sealed columns, revisions);
    ConfigError on another backend."""
    if not isinstance(database, SqlDatabase):
        raise ConfigError(f"this needs a SQL database (sqlite:/// or postgresql://), not {database.name!r}")
    return database.engine
