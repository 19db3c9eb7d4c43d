"""SQL storage of second factors (store/mfa.py): every single-use rule is one conditional statement."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..mfa import TotpSecret
from .dialect import insert_for
from .schema import recovery_codes, totp_secrets
from .sealed import Sealing

__all__ = ["SqlMfaStore"]


class SqlMfaStore:
    def __init__(self, engine: AsyncEngine, sealer: Sealing) -> None:
        self._engine = engine
        self._sealer = sealer

    async def totp(self, user_id: str) -> TotpSecret | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(totp_secrets).where(totp_secrets.c.user_id == user_id))).first()
        if row is None:
            return None
        return TotpSecret(user_id=row.user_id, secret=self._sealer.unseal(row.sealed_secret), active=bool(row.active),
                          created_at=row.created_at, activated_at=row.activated_at, last_step=row.last_step)

    async def begin_totp(self, user_id: str, secret: str, now: int) -> bool:
        sealed = self._sealer.seal(secret)
        stmt = insert_for(self._engine, totp_secrets).values(
            user_id=user_id, sealed_secret=sealed, active=False, last_step=None, created_at=now, activated_at=None)
        # an active secret is never replaced by a new enrolment: it must be removed first
        stmt = stmt.on_conflict_do_update(index_elements=[totp_secrets.c.user_id],
                                          set_={"sealed_secret": sealed, "created_at": now, "last_step": None},
                                          where=totp_secrets.c.active.is_(False))
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt.returning(totp_secrets.c.user_id))).first() is not None

    async def activate_totp(self, user_id: str, secret: str, step: int, now: int) -> bool:
        async with self._engine.connect() as conn:
            sealed = (await conn.execute(select(totp_secrets.c.sealed_secret).where(
                totp_secrets.c.user_id == user_id, totp_secrets.c.active.is_(False)))).scalar()
        if sealed is None or self._sealer.unseal(sealed) != secret:
            return False
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(totp_secrets)
                .where(totp_secrets.c.user_id == user_id, totp_secrets.c.active.is_(False),
                       totp_secrets.c.sealed_secret == sealed)
                .values(active=True, last_step=step, activated_at=now))
        return result.rowcount == 1

    async def use_step(self, user_id: str, step: int) -> bool:
        c = totp_secrets.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(totp_secrets)
                .where(c.user_id == user_id, c.active.is_(True), or_(c.last_step.is_(None), c.last_step < step))
                .values(last_step=step))
        return result.rowcount == 1

    async def remove_totp(self, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(totp_secrets).where(totp_secrets.c.user_id == user_id))
        return result.rowcount > 0

    async def replace_recovery_codes(self, user_id: str, digests: list[str], now: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            if digests:
                await conn.execute(insert(recovery_codes),
                                   [{"user_id": user_id, "digest": d, "created_at": now} for d in digests])

    async def use_recovery_code(self, user_id: str, digest: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(recovery_codes).where(
                recovery_codes.c.user_id == user_id, recovery_codes.c.digest == digest))
        return result.rowcount == 1

    async def recovery_codes_left(self, user_id: str) -> int:
        async with self._engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(recovery_codes)
                                        .where(recovery_codes.c.user_id == user_id))).scalar()
        return int(count or 0)

    async def remove_recovery_codes(self, user_id: str) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))).rowcount
