"""SQL storage of linked identities (ostiary.store.federation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..federation import LinkedIdentity, LinkExists
from .schema import federated_identities as links

__all__ = ["SqlIdentityLinkStore"]


def _link(row: Any) -> LinkedIdentity:
    return LinkedIdentity(provider=row.provider, subject=row.subject, user_id=row.user_id,
                          created_at=row.created_at, last_used=row.last_used, label=row.label)


class SqlIdentityLinkStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find(self, provider: str, subject: str) -> LinkedIdentity | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(links).where(links.c.provider == provider,
                                                          links.c.subject == subject))).first()
        return _link(row) if row else None

    async def add(self, link: LinkedIdentity) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(links).values(
                    provider=link.provider, subject=link.subject, user_id=link.user_id, label=link.label[:255],
                    created_at=link.created_at, last_used=link.last_used))
        except IntegrityError:  # the primary key: two racing first sign-ins give one link
            raise LinkExists(f"{link.provider}:{link.subject}") from None

    async def for_user(self, user_id: str) -> Sequence[LinkedIdentity]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(links).where(links.c.user_id == user_id)
                                       .order_by(links.c.created_at, links.c.provider))).all()
        return [_link(r) for r in rows]

    async def touch(self, provider: str, subject: str, now: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(links).where(links.c.provider == provider, links.c.subject == subject)
                               .values(last_used=now))

    async def remove(self, user_id: str, provider: str, subject: str, *, keep_last: bool = False) -> bool:
        query = delete(links).where(links.c.user_id == user_id, links.c.provider == provider,
                                    links.c.subject == subject)
        if keep_last:  # one statement: the other link must still be there when this one goes
            other = links.alias("other")
            query = query.where(exists().where(other.c.user_id == user_id, or_(
                other.c.provider != provider, other.c.subject != subject)))
        async with self._engine.begin() as conn:
            if keep_last and conn.dialect.name == "postgresql":
                # READ COMMITTED: a racing removal of the user's other link is not yet visible to the
                # statement above; lock the user's links first so the second removal waits and re-reads.
                await conn.execute(select(links.c.provider).where(links.c.user_id == user_id).with_for_update())
            result = await conn.execute(query)
        return result.rowcount > 0
