"""SQL implementations of the identity stores: users, sessions, consents, login throttling."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..identity import Session, User, UserExists
from .schema import consents, login_failures, sessions, users

__all__ = ["SqlConsentStore", "SqlLoginThrottle", "SqlSessionStore", "SqlUserStore"]


def _user(row: Any) -> User:
    return User(id=row.id, username=row.username, password_hash=row.password_hash, disabled=bool(row.disabled),
                claims=orjson.loads(row.claims), created_at=row.created_at, updated_at=row.updated_at)


def _user_values(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "password_hash": user.password_hash,
            "disabled": user.disabled, "claims": orjson.dumps(dict(user.claims)).decode(),
            "created_at": user.created_at, "updated_at": user.updated_at}


class SqlUserStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: str) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def by_username(self, username: str) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return _user(row) if row else None

    async def list(self) -> Sequence[User]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(r) for r in rows]

    async def create(self, user: User) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(users).values(**_user_values(user)))
        except IntegrityError:
            raise UserExists(user.username) from None

    async def update(self, user: User) -> bool:
        values = _user_values(user)
        values.pop("created_at")
        async with self._engine.begin() as conn:
            result = await conn.execute(update(users).where(users.c.id == user.id).values(**values))
        return result.rowcount > 0

    async def delete(self, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            await conn.execute(delete(consents).where(consents.c.user_id == user_id))
            result = await conn.execute(delete(users).where(users.c.id == user_id))
        return result.rowcount > 0


def _session(row: Any) -> Session:
    return Session(digest=row.digest, sid=row.sid, user_id=row.user_id, auth_time=row.auth_time,
                   expires_at=row.expires_at, amr=tuple(orjson.loads(row.amr)), acr=row.acr,
                   clients=tuple(orjson.loads(row.clients)))


class SqlSessionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, session: Session) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(sessions).values(
                digest=session.digest, sid=session.sid, user_id=session.user_id, auth_time=session.auth_time,
                expires_at=session.expires_at, amr=orjson.dumps(list(session.amr)).decode(), acr=session.acr,
                clients=orjson.dumps(list(session.clients)).decode(),
            ))

    async def get(self, digest: str, now: int) -> Session | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(sessions).where(sessions.c.digest == digest, sessions.c.expires_at > now)
            )).first()
        return _session(row) if row else None

    async def add_client(self, digest: str, client_id: str) -> None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(select(sessions.c.clients).where(sessions.c.digest == digest))).first()
            if row is None:
                return
            clients = list(orjson.loads(row.clients))
            if client_id not in clients:
                clients.append(client_id)
                await conn.execute(update(sessions).where(sessions.c.digest == digest)
                                   .values(clients=orjson.dumps(clients).decode()))

    async def delete(self, digest: str) -> Session | None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(select(sessions).where(sessions.c.digest == digest))).first()
            if row is None:
                return None
            await conn.execute(delete(sessions).where(sessions.c.digest == digest))
        return _session(row)

    async def alive(self, sid: str, now: int) -> bool:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(sessions.c.sid).where(
                sessions.c.sid == sid, sessions.c.expires_at > now))).first()
        return row is not None

    async def delete_for_user(self, user_id: str) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))).rowcount


class SqlConsentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: str, client_id: str) -> frozenset[str]:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(consents.c.scope).where(
                consents.c.user_id == user_id, consents.c.client_id == client_id))).first()
        return frozenset(row.scope.split()) if row else frozenset()

    async def grant(self, user_id: str, client_id: str, scopes: frozenset[str]) -> None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(select(consents.c.scope).where(
                consents.c.user_id == user_id, consents.c.client_id == client_id))).first()
            merged = " ".join(sorted(scopes | (frozenset(row.scope.split()) if row else frozenset())))
            if row is None:
                await conn.execute(insert(consents).values(user_id=user_id, client_id=client_id, scope=merged,
                                                           created_at=int(time.time())))
            else:
                await conn.execute(update(consents).where(
                    consents.c.user_id == user_id, consents.c.client_id == client_id).values(scope=merged))

    async def revoke(self, user_id: str, client_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(consents).where(
                consents.c.user_id == user_id, consents.c.client_id == client_id))
        return result.rowcount > 0

    async def list_for_user(self, user_id: str) -> Mapping[str, frozenset[str]]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(consents).where(consents.c.user_id == user_id))).all()
        return {r.client_id: frozenset(r.scope.split()) for r in rows}


class SqlLoginThrottle:
    """Failures counted per key in a window; past `limit`, the key is locked for a growing delay."""

    def __init__(self, engine: AsyncEngine, *, limit: int = 5, window: int = 900, base_delay: int = 30) -> None:
        self._engine = engine
        self._limit = limit
        self._window = window
        self._base = base_delay

    async def locked_for(self, keys: Sequence[str], now: int) -> int:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(login_failures.c.locked_until)
                                       .where(login_failures.c.key.in_(list(keys))))).all()
        return int(max([0, *(r.locked_until - now for r in rows)]))

    async def failed(self, keys: Sequence[str], now: int) -> None:
        async with self._engine.begin() as conn:
            for key in keys:
                limit = self._limit * (4 if key.startswith("ip:") else 1)
                row = (await conn.execute(select(login_failures).where(login_failures.c.key == key))).first()
                if row is None or now - row.window_start > self._window:
                    if row is not None:
                        await conn.execute(delete(login_failures).where(login_failures.c.key == key))
                    await conn.execute(insert(login_failures).values(key=key, count=1, window_start=now,
                                                                     locked_until=0))
                    continue
                count = int(row._mapping["count"]) + 1
                over = count - limit
                locked = now + min(self._base * 2 ** max(0, over - 1), 3600) if over >= 0 else 0
                await conn.execute(update(login_failures).where(login_failures.c.key == key)
                                   .values(count=count, locked_until=locked))

    async def succeeded(self, keys: Sequence[str]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.key.in_(
                [k for k in keys if k.startswith("user:")])))
