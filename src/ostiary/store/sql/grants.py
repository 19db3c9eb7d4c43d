"""SQL implementations of authorization codes and interactions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..grants import AuthorizationCode
from .schema import authorization_codes, interactions

__all__ = ["SqlCodeStore", "SqlInteractionStore"]


def _code(row: Any) -> AuthorizationCode:
    return AuthorizationCode(digest=row.digest, client_id=row.client_id, grant_id=row.grant_id,
                             data=orjson.loads(row.data), expires_at=row.expires_at, consumed_at=row.consumed_at)


class SqlCodeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(self, code: AuthorizationCode) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(authorization_codes).values(
                digest=code.digest, client_id=code.client_id, grant_id=code.grant_id,
                data=orjson.dumps(dict(code.data)).decode(), expires_at=code.expires_at, consumed_at=None,
            ))

    async def consume(self, digest: str, now: int) -> AuthorizationCode | None:
        # One conditional UPDATE ... RETURNING: exactly one of racing redemptions gets the row.
        async with self._engine.begin() as conn:
            row = (await conn.execute(
                update(authorization_codes)
                .where(authorization_codes.c.digest == digest, authorization_codes.c.consumed_at.is_(None),
                       authorization_codes.c.expires_at > now)
                .values(consumed_at=now)
                .returning(*authorization_codes.c)
            )).first()
        return _code(row) if row else None

    async def find(self, digest: str) -> AuthorizationCode | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(authorization_codes)
                                      .where(authorization_codes.c.digest == digest))).first()
        return _code(row) if row else None


class SqlInteractionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(self, interaction_id: str, data: Mapping[str, Any], expires_at: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(interactions).values(
                id=interaction_id, data=orjson.dumps(dict(data)).decode(), expires_at=expires_at))

    async def get(self, interaction_id: str, now: int) -> Mapping[str, Any] | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(interactions).where(
                interactions.c.id == interaction_id, interactions.c.expires_at > now))).first()
        return orjson.loads(row.data) if row else None

    async def update(self, interaction_id: str, data: Mapping[str, Any]) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(update(interactions).where(interactions.c.id == interaction_id)
                                        .values(data=orjson.dumps(dict(data)).decode()))
        return result.rowcount > 0

    async def delete(self, interaction_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(interactions).where(interactions.c.id == interaction_id))

    async def take(self, interaction_id: str, now: int) -> Mapping[str, Any] | None:
        # One DELETE ... RETURNING: the single statement is the decision (no read-then-delete).
        async with self._engine.begin() as conn:
            row = (await conn.execute(
                delete(interactions)
                .where(interactions.c.id == interaction_id, interactions.c.expires_at > now)
                .returning(interactions.c.data)
            )).first()
        return orjson.loads(row.data) if row else None
