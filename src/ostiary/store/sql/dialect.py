"""The INSERT ... ON CONFLICT both SQLite (3.24+) and PostgreSQL understand, for atomic upserts."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["insert_for"]


def insert_for(engine: AsyncEngine, table: Table) -> postgresql.Insert | sqlite.Insert:
    """A dialect INSERT with `on_conflict_do_nothing` / `on_conflict_do_update` (one atomic statement)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
