"""SQL implementation of the passkey credential and challenge stores."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..passkeys import CeremonyChallenge, PasskeyCredential
from .schema import passkey_challenges, passkey_credentials

__all__ = ["SqlChallengeStore", "SqlPasskeyStore"]

_t = passkey_credentials.c


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _credential(row: Any) -> PasskeyCredential:
    return PasskeyCredential(
        credential_id=row.credential_id, user_id=row.user_id, user_handle=row.user_handle,
        public_key=_unb64(row.public_key), sign_count=row.sign_count,
        transports=tuple(orjson.loads(row.transports)), backup_eligible=bool(row.backup_eligible),
        backed_up=bool(row.backed_up), name=row.name, created_at=row.created_at, last_used_at=row.last_used_at)


class SqlPasskeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, credential: PasskeyCredential) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(passkey_credentials.insert().values(
                    credential_id=credential.credential_id, user_id=credential.user_id,
                    user_handle=credential.user_handle, public_key=_b64(credential.public_key),
                    sign_count=credential.sign_count, transports=orjson.dumps(list(credential.transports)).decode(),
                    backup_eligible=credential.backup_eligible, backed_up=credential.backed_up,
                    name=credential.name, created_at=credential.created_at, last_used_at=credential.last_used_at))
        except IntegrityError:
            return False
        return True

    async def get(self, credential_id: str) -> PasskeyCredential | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(passkey_credentials).where(_t.credential_id == credential_id))).first()
        return _credential(row) if row else None

    async def list_for_user(self, user_id: str) -> Sequence[PasskeyCredential]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(passkey_credentials).where(_t.user_id == user_id)
                                       .order_by(_t.created_at, _t.credential_id))).all()
        return [_credential(r) for r in rows]

    async def record_use(self, credential_id: str, sign_count: int, backed_up: bool, now: int) -> bool:
        # WebAuthn §7.2 step 21: the counter must grow, unless the authenticator keeps none (0 and 0).
        # The comparison is in the UPDATE, so of two uses racing with one counter value one wins.
        grows = _t.sign_count < sign_count if sign_count > 0 else _t.sign_count == 0
        async with self._engine.begin() as conn:
            result = await conn.execute(update(passkey_credentials)
                                        .where(_t.credential_id == credential_id, grows)
                                        .values(sign_count=sign_count, backed_up=backed_up, last_used_at=now))
        return result.rowcount > 0

    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(update(passkey_credentials)
                                        .where(_t.credential_id == credential_id, _t.user_id == user_id)
                                        .values(name=name))
        return result.rowcount > 0

    async def remove(self, user_id: str, credential_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(passkey_credentials)
                                        .where(_t.credential_id == credential_id, _t.user_id == user_id))
        return result.rowcount > 0


class SqlChallengeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(self, challenge: CeremonyChallenge, now: int) -> None:
        c = passkey_challenges.c
        async with self._engine.begin() as conn:
            await conn.execute(delete(passkey_challenges).where(c.expires_at <= now))
            await conn.execute(passkey_challenges.insert().values(
                digest=challenge.digest, purpose=challenge.purpose, binding=challenge.binding,
                user_id=challenge.user_id, user_handle=challenge.user_handle, expires_at=challenge.expires_at))

    async def take(self, digest: str, now: int) -> CeremonyChallenge | None:
        c = passkey_challenges.c
        async with self._engine.begin() as conn:
            row = (await conn.execute(delete(passkey_challenges)
                                      .where(c.digest == digest, c.expires_at > now)
                                      .returning(*passkey_challenges.c))).first()
        if row is None:
            return None
        return CeremonyChallenge(digest=row.digest, purpose=row.purpose, binding=row.binding, user_id=row.user_id,
                                 user_handle=row.user_handle, expires_at=row.expires_at)
