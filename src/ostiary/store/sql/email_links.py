"""SQL implementation of the mailed links (store/email_links.py) and the lookup of users by address."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..email_links import EmailLink, LinkPurpose
from ..identity import User
from .identity import _user
from .schema import email_links, users

__all__ = ["SqlEmailLinkStore", "SqlUserEmails"]


def _link(row: Any) -> EmailLink:
    return EmailLink(digest=row.digest, purpose=row.purpose, user_id=row.user_id, email=row.email,
                     expires_at=row.expires_at)


class SqlEmailLinkStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, link: EmailLink) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(email_links).values(
                digest=link.digest, purpose=link.purpose, user_id=link.user_id, email=link.email,
                expires_at=link.expires_at))

    async def peek(self, digest: str, purpose: LinkPurpose, now: int) -> EmailLink | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(email_links).where(
                email_links.c.digest == digest, email_links.c.purpose == purpose,
                email_links.c.expires_at > now))).first()
        return _link(row) if row else None

    async def take(self, digest: str, purpose: LinkPurpose, now: int) -> EmailLink | None:
        # One DELETE ... RETURNING (SQLite 3.35+, PostgreSQL): the statement is the decision.
        async with self._engine.begin() as conn:
            row = (await conn.execute(
                delete(email_links)
                .where(email_links.c.digest == digest, email_links.c.purpose == purpose,
                       email_links.c.expires_at > now)
                .returning(*email_links.c)
            )).first()
        return _link(row) if row else None

    async def delete_for_user(self, user_id: str, purpose: LinkPurpose) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(email_links).where(
                email_links.c.user_id == user_id, email_links.c.purpose == purpose))).rowcount

    async def purge_expired(self, now: int) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(email_links).where(email_links.c.expires_at <= now))).rowcount


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlUserEmails:
    """Users by their `email` claim: a text match on the stored JSON narrows, an exact compare decides."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def users_with_email(self, address: str, limit: int) -> Sequence[User]:
        if '"' in address or "\\" in address:  # never a plain address (mailer.valid_address)
            return []
        pattern = f'%"email":"{_like_escape(address)}"%'
        async with self._engine.connect() as conn:
            # verified addresses first: accounts that merely claim it (an upstream's word) never push
            # the owner out of the limit (red team, docs/security.md)
            unverified = case((users.c.claims.like('%"email_verified":true%'), 0), else_=1)
            rows = (await conn.execute(select(users).where(users.c.claims.ilike(pattern, escape="\\"))
                                       .order_by(unverified, users.c.username).limit(limit))).all()
        wanted = address.lower()
        return [u for u in map(_user, rows) if str(u.claims.get("email", "")).lower() == wanted]
