"""In-memory passkey credentials and ceremony challenges (the contracts of store/passkeys.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..passkeys import CeremonyChallenge, PasskeyCredential
from .data import MemoryData

__all__ = ["MemoryChallengeStore", "MemoryPasskeyStore"]


class MemoryPasskeyStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def add(self, credential: PasskeyCredential) -> bool:
        with self._data.lock:
            if credential.credential_id in self._data.passkeys:
                return False
            self._data.passkeys[credential.credential_id] = credential
            return True

    async def get(self, credential_id: str) -> PasskeyCredential | None:
        with self._data.lock:
            return self._data.passkeys.get(credential_id)

    async def list_for_user(self, user_id: str) -> Sequence[PasskeyCredential]:
        with self._data.lock:
            found = [c for c in self._data.passkeys.values() if c.user_id == user_id]
        return sorted(found, key=lambda c: (c.created_at, c.credential_id))

    async def record_use(self, credential_id: str, sign_count: int, backed_up: bool, now: int) -> bool:
        with self._data.lock:
            stored = self._data.passkeys.get(credential_id)
            if stored is None or not (stored.sign_count < sign_count or stored.sign_count == sign_count == 0):
                return False
            self._data.passkeys[credential_id] = replace(stored, sign_count=sign_count, backed_up=backed_up,
                                                         last_used_at=now)
            return True

    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        with self._data.lock:
            stored = self._data.passkeys.get(credential_id)
            if stored is None or stored.user_id != user_id:
                return False
            self._data.passkeys[credential_id] = replace(stored, name=name)
            return True

    async def remove(self, user_id: str, credential_id: str) -> bool:
        with self._data.lock:
            stored = self._data.passkeys.get(credential_id)
            if stored is None or stored.user_id != user_id:
                return False
            del self._data.passkeys[credential_id]
            return True


class MemoryChallengeStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def put(self, challenge: CeremonyChallenge, now: int) -> None:
        with self._data.lock:
            kept = self._data.passkey_challenges
            for digest in [k for k, c in kept.items() if c.expires_at <= now]:
                del kept[digest]
            kept[challenge.digest] = challenge

    async def take(self, digest: str, now: int) -> CeremonyChallenge | None:
        with self._data.lock:
            challenge = self._data.passkey_challenges.pop(digest, None)
        return challenge if challenge is not None and challenge.expires_at > now else None
