"""In-memory second factors (the contract of store/mfa.py): each check and its write under the lock."""

from __future__ import annotations

from dataclasses import replace

from ..mfa import TotpSecret
from .data import MemoryData

__all__ = ["MemoryMfaStore"]


class MemoryMfaStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def totp(self, user_id: str) -> TotpSecret | None:
        with self._data.lock:
            return self._data.totp.get(user_id)

    async def begin_totp(self, user_id: str, secret: str, now: int) -> bool:
        with self._data.lock:
            stored = self._data.totp.get(user_id)
            if stored is not None and stored.active:
                return False
            self._data.totp[user_id] = TotpSecret(user_id=user_id, secret=secret, active=False, created_at=now)
            return True

    async def activate_totp(self, user_id: str, secret: str, step: int, now: int) -> bool:
        with self._data.lock:
            stored = self._data.totp.get(user_id)
            if stored is None or stored.active or stored.secret != secret:
                return False
            self._data.totp[user_id] = replace(stored, active=True, last_step=step, activated_at=now)
            return True

    async def use_step(self, user_id: str, step: int) -> bool:
        with self._data.lock:
            stored = self._data.totp.get(user_id)
            if stored is None or not stored.active or (stored.last_step is not None and stored.last_step >= step):
                return False
            self._data.totp[user_id] = replace(stored, last_step=step)
            return True

    async def remove_totp(self, user_id: str) -> bool:
        with self._data.lock:
            return self._data.totp.pop(user_id, None) is not None

    async def replace_recovery_codes(self, user_id: str, digests: list[str], now: int) -> None:
        with self._data.lock:
            self._data.recovery_codes[user_id] = set(digests)

    async def use_recovery_code(self, user_id: str, digest: str) -> bool:
        with self._data.lock:
            codes = self._data.recovery_codes.get(user_id, set())
            if digest not in codes:
                return False
            codes.discard(digest)
            return True

    async def recovery_codes_left(self, user_id: str) -> int:
        with self._data.lock:
            return len(self._data.recovery_codes.get(user_id, ()))

    async def remove_recovery_codes(self, user_id: str) -> int:
        with self._data.lock:
            return len(self._data.recovery_codes.pop(user_id, set()))
