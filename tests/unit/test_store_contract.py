"""The migrations that create the SQL schema, on SQLite and PostgreSQL.

The contracts of the store Protocols themselves are tested over every backend (memory, SQLite,
PostgreSQL) in tests/unit/store/."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import UniqueConstraint, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from ostiary.store import Client
from ostiary.store.sql.engine import current_revision, head_revision, make_engine, upgrade
from ostiary.store.sql.schema import metadata
from ostiary.store.sql.stores import SqlClientStore


def uid(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:16]


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


# -- migrations ---------------------------------------------------------------------------------


def _schema(conn: Any) -> dict[str, Any]:
    insp = inspect(conn)
    out: dict[str, Any] = {}
    for table in insp.get_table_names():
        if table == "alembic_version":
            continue
        out[table] = {
            "columns": {c["name"]: c["nullable"] for c in insp.get_columns(table)},
            "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            # PostgreSQL reports the index behind a UNIQUE constraint too; those are compared as constraints
            "indexes": {i["name"]: list(i["column_names"]) for i in insp.get_indexes(table)
                        if not i.get("duplicates_constraint") and not i.get("unique")},
            "unique": sorted({
                *[tuple(u["column_names"]) for u in insp.get_unique_constraints(table)],
                *[tuple(i["column_names"]) for i in insp.get_indexes(table)
                  if i.get("unique") and not i.get("duplicates_constraint")],
            }),
        }
    return out


def _expected_schema() -> dict[str, Any]:
    return {
        t.name: {
            "columns": {c.name: c.nullable for c in t.columns},
            "pk": sorted(c.name for c in t.primary_key.columns),
            "indexes": {i.name: [c.name for c in i.columns] for i in t.indexes if not i.unique},
            "unique": sorted({
                *[tuple(c.name for c in u.columns) for u in t.constraints if isinstance(u, UniqueConstraint)],
                *[(c.name,) for c in t.columns if c.unique],
                *[tuple(c.name for c in i.columns) for i in t.indexes if i.unique],
            }),
        }
        for t in metadata.sorted_tables
    }


async def test_migrated_database_has_the_schema_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        actual = await conn.run_sync(_schema)
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert "alembic_version" in tables
    assert actual == _expected_schema()


async def test_current_revision_is_head(engine: AsyncEngine) -> None:
    assert head_revision() is not None
    assert await current_revision(engine) == head_revision()


async def test_upgrade_twice_is_a_no_op(engine: AsyncEngine) -> None:
    clients = SqlClientStore(engine)
    client_id = uid("kept-")
    await clients.create(Client(client_id=client_id, client_name="survives"))
    await upgrade(engine)
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    kept = await clients.get(client_id)
    assert kept is not None and kept.client_name == "survives"
