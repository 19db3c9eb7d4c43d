"""The change signal in SQL: one version row, and the users whose tokens a management command ended."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, Integer, String, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .schema import metadata

__all__ = ["SqlChangeLog", "change_signal", "revoked_subjects"]

change_signal = Table(
    "change_signal",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: a single row
    Column("version", Integer, nullable=False),
)

revoked_subjects = Table(
    "revoked_subjects",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("revoked_at", Integer, nullable=False),  # tokens with iat <= revoked_at are dead
    Column("keep_until", Integer, nullable=False),  # after every such token has expired
)


async def _bump(conn: AsyncConnection) -> int:
    result = await conn.execute(
        update(change_signal).where(change_signal.c.id == 1)
        .values(version=change_signal.c.version + 1).returning(change_signal.c.version)
    )
    row = result.first()
    if row is not None:
        return int(row.version)
    await conn.execute(insert(change_signal).values(id=1, version=1))  # the migration creates it; be safe
    return 1


class SqlChangeLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def version(self) -> int:
        async with self._engine.connect() as conn:
            value = (await conn.execute(select(change_signal.c.version).where(change_signal.c.id == 1))).scalar()
        return int(value or 0)

    async def bump(self) -> int:
        async with self._engine.begin() as conn:
            return await _bump(conn)

    async def revoke_subject(self, user_id: str, revoked_at: int, keep_until: int) -> None:
        try:
            async with self._engine.begin() as conn:
                # Expired marks go here, on the rare command: the nodes' background reads never write.
                await conn.execute(delete(revoked_subjects).where(revoked_subjects.c.keep_until < revoked_at))
                await conn.execute(delete(revoked_subjects).where(revoked_subjects.c.user_id == user_id))
                await conn.execute(insert(revoked_subjects).values(
                    user_id=user_id, revoked_at=revoked_at, keep_until=keep_until))
                await _bump(conn)
        except IntegrityError:  # another command recorded the same user at the same moment (and bumped)
            pass

    async def revoked_subjects(self, now: int) -> Mapping[str, int]:
        async with self._engine.connect() as conn:  # read only: it runs on every node, every change
            rows = (await conn.execute(select(revoked_subjects.c.user_id, revoked_subjects.c.revoked_at)
                                       .where(revoked_subjects.c.keep_until >= now))).all()
        return {row.user_id: int(row.revoked_at) for row in rows}
