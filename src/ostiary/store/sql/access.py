"""SQL storage of access facts (ostiary.store.access); its table is in the shared ``metadata``."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Boolean, Column, Integer, String, Table, Text, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..access import AccessFacts
from .schema import metadata

__all__ = ["SqlAccessStore", "user_access"]

user_access = Table(
    "user_access",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("fhir_user", String(200)),  # relative to this server's FHIR base: Patient/123
    Column("roles", Text, nullable=False),  # JSON list
    Column("patients", Text, nullable=False),  # JSON list of Patient ids
    Column("patient_group", String(64)),  # a Group id on this server's FHIR base
    Column("all_patients", Boolean, nullable=False),
    Column("updated_at", Integer, nullable=False),
)


def _facts(row: Any) -> AccessFacts:
    return AccessFacts(user_id=row.user_id, fhir_user=row.fhir_user, roles=frozenset(orjson.loads(row.roles)),
                       patients=tuple(orjson.loads(row.patients)), group=row.patient_group,
                       all_patients=bool(row.all_patients), updated_at=row.updated_at)


class SqlAccessStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: str) -> AccessFacts | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(user_access).where(user_access.c.user_id == user_id))).first()
        return _facts(row) if row else None

    async def put(self, facts: AccessFacts) -> None:
        values = {"fhir_user": facts.fhir_user, "roles": orjson.dumps(sorted(facts.roles)).decode(),
                  "patients": orjson.dumps(list(facts.patients)).decode(), "patient_group": facts.group,
                  "all_patients": facts.all_patients, "updated_at": facts.updated_at}
        async with self._engine.begin() as conn:
            changed = await conn.execute(update(user_access).where(user_access.c.user_id == facts.user_id)
                                         .values(**values))
            if changed.rowcount == 0:
                await conn.execute(insert(user_access).values(user_id=facts.user_id, **values))

    async def delete(self, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(user_access).where(user_access.c.user_id == user_id))
        return result.rowcount > 0
