"""SQL implementations of the identity stores: users, sessions, consents, login throttling."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import Case, ColumnElement, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..identity import ClaimsChange, Session, ThrottleRule, User, UserExists
from .access import user_access
from .dialect import insert_for
from .schema import (
    consents,
    email_links,
    federated_identities,
    login_failures,
    passkey_credentials,
    recovery_codes,
    sessions,
    totp_secrets,
    users,
)

__all__ = ["SqlConsentStore", "SqlLoginThrottle", "SqlSessionStore", "SqlUserStore"]


def _user(row: Any) -> User:
    return User(id=row.id, username=row.username, password_hash=row.password_hash, disabled=bool(row.disabled),
                claims=orjson.loads(row.claims), created_at=row.created_at, updated_at=row.updated_at)


def _user_values(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "password_hash": user.password_hash,
            "disabled": user.disabled, "claims": orjson.dumps(dict(user.claims)).decode(),
            "created_at": user.created_at, "updated_at": user.updated_at}


_CAS_TRIES = 20  # compare-and-set rounds; each lost round means another writer made progress


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

    async def change_claims(self, user_id: str, change: ClaimsChange, now: int) -> User | None:
        # Compare-and-set on the claims: written only if no one changed them since they were read.
        for _ in range(_CAS_TRIES):
            async with self._engine.connect() as conn:
                row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
            if row is None:
                return None
            user = _user(row)
            claims = change(user.claims)
            if claims is None:
                return None
            changed = replace(user, claims=dict(claims), updated_at=now)
            text = orjson.dumps(dict(claims)).decode()
            async with self._engine.begin() as conn:
                result = await conn.execute(update(users).where(users.c.id == user_id, users.c.claims == row.claims)
                                            .values(claims=text, updated_at=now))
            if result.rowcount:
                return changed
        return None

    async def set_password_hash(self, user_id: str, password_hash: str, now: int | None,
                                expected: str | None = None) -> User | None:
        where = [users.c.id == user_id] + ([users.c.password_hash == expected] if expected is not None else [])
        values: dict[str, Any] = {"password_hash": password_hash}
        if now is not None:
            values["updated_at"] = now
        return await self._write_fields(where, values)

    async def set_disabled(self, user_id: str, disabled: bool, now: int) -> User | None:
        return await self._write_fields([users.c.id == user_id], {"disabled": disabled, "updated_at": now})

    async def _write_fields(self, where: Sequence[ColumnElement[bool]], values: dict[str, Any]) -> User | None:
        """One conditional UPDATE of some columns; the row as written (read in the same transaction)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(update(users).where(*where).values(**values))
            if not result.rowcount:
                return None
            row = (await conn.execute(select(users).where(where[0]))).first()
        return _user(row) if row else None

    async def delete(self, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            await conn.execute(delete(consents).where(consents.c.user_id == user_id))
            await conn.execute(delete(user_access).where(user_access.c.user_id == user_id))
            await conn.execute(delete(passkey_credentials).where(passkey_credentials.c.user_id == user_id))
            await conn.execute(delete(totp_secrets).where(totp_secrets.c.user_id == user_id))
            await conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            await conn.execute(delete(federated_identities).where(federated_identities.c.user_id == user_id))
            await conn.execute(delete(email_links).where(email_links.c.user_id == user_id))
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
        # Compare-and-set: two clients getting tokens in one session at once must both be kept.
        for _ in range(_CAS_TRIES):
            async with self._engine.connect() as conn:
                row = (await conn.execute(select(sessions.c.clients).where(sessions.c.digest == digest))).first()
            if row is None:
                return
            clients = list(orjson.loads(row.clients))
            if client_id in clients:
                return
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(sessions).where(sessions.c.digest == digest, sessions.c.clients == row.clients)
                    .values(clients=orjson.dumps([*clients, client_id]).decode()))
            if result.rowcount:
                return

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

    async def delete_for_user(self, user_id: str, keep: str | None = None) -> int:
        stmt = delete(sessions).where(sessions.c.user_id == user_id)
        if keep is not None:
            stmt = stmt.where(sessions.c.digest != keep)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount


class SqlConsentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: str, client_id: str) -> frozenset[str]:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(consents.c.scope).where(
                consents.c.user_id == user_id, consents.c.client_id == client_id))).first()
        return frozenset(row.scope.split()) if row else frozenset()

    async def grant(self, user_id: str, client_id: str, scopes: frozenset[str]) -> None:
        # Compare-and-set (no read-then-insert): two consents given at once are merged, never a 500.
        where = (consents.c.user_id == user_id, consents.c.client_id == client_id)
        for _ in range(_CAS_TRIES):
            async with self._engine.connect() as conn:
                row = (await conn.execute(select(consents.c.scope).where(*where))).first()
            async with self._engine.begin() as conn:
                if row is None:
                    result = await conn.execute(
                        insert_for(self._engine, consents).values(
                            user_id=user_id, client_id=client_id, scope=" ".join(sorted(scopes)),
                            created_at=int(time.time())).on_conflict_do_nothing())
                else:
                    merged = " ".join(sorted(scopes | frozenset(row.scope.split())))
                    result = await conn.execute(
                        update(consents).where(*where, consents.c.scope == row.scope).values(scope=merged))
            if result.rowcount:
                return

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
    """ThrottleRule counters in one row per key, changed only by single atomic statements."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def attempt(self, key: str, rule: ThrottleRule, now: int) -> int:
        row = login_failures.c
        quiet = row.locked_until + rule.window < now  # no attempt for a whole window: start afresh
        first = insert_for(self._engine, login_failures).values(
            key=key, count=1, window_start=now, locked_until=now + rule.delay(1))
        # INSERT ... ON CONFLICT DO UPDATE ... WHERE: a key still waiting is left untouched and
        # nothing is returned; otherwise the count and the next allowed time move in the same statement.
        stmt = first.on_conflict_do_update(
            index_elements=[row.key],
            set_={
                "count": case((quiet, 1), else_=row.count + 1),
                "window_start": case((quiet, now), else_=row.window_start),
                "locked_until": now + case((quiet, rule.delay(1)), else_=_delay_of(row.count + 1, rule)),
            },
            where=row.locked_until <= now,
        ).returning(row.count)
        async with self._engine.begin() as conn:
            admitted = (await conn.execute(stmt)).first()
        if admitted is not None:
            return 0
        async with self._engine.connect() as conn:
            until = (await conn.execute(select(row.locked_until).where(row.key == key))).scalar()
        return max(1, int(until or 0) - now)

    async def refund(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(login_failures)
                               .where(login_failures.c.key == key, login_failures.c.count > 0)
                               .values(count=login_failures.c.count - 1))

    async def reset(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.key == key))


def _delay_of(attempt: ColumnElement[int], rule: ThrottleRule) -> Case[int]:
    """ThrottleRule.delay as SQL (every database has CASE; not every SQLite has POWER)."""
    steps = []
    n = rule.free
    while rule.delay(n) < rule.max_delay:
        steps.append((attempt == n, rule.delay(n)))
        n += 1
    return case((attempt < rule.free, 0), *steps, else_=rule.max_delay)
