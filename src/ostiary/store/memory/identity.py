"""In-memory users, SSO sessions, consents and login throttle counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..identity import ClaimsChange, Session, ThrottleRule, User, UserExists
from .data import MemoryData, Throttled, copy_json

__all__ = ["MemoryConsentStore", "MemoryLoginThrottle", "MemorySessionStore", "MemoryUserStore"]


def _detached(user: User) -> User:
    return replace(user, claims=copy_json(user.claims))


class MemoryUserStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def get(self, user_id: str) -> User | None:
        with self._data.lock:
            user = self._data.users.get(user_id)
        return _detached(user) if user is not None else None

    async def by_username(self, username: str) -> User | None:
        with self._data.lock:
            user = next((u for u in self._data.users.values() if u.username == username), None)
        return _detached(user) if user is not None else None

    async def list(self) -> Sequence[User]:
        with self._data.lock:
            users = sorted(self._data.users.values(), key=lambda u: u.username)
        return [_detached(u) for u in users]

    async def create(self, user: User) -> None:
        stored = _detached(user)
        with self._data.lock:
            if user.id in self._data.users or any(u.username == user.username for u in self._data.users.values()):
                raise UserExists(user.username)
            self._data.users[user.id] = stored

    async def update(self, user: User) -> bool:
        with self._data.lock:
            old = self._data.users.get(user.id)
            if old is None:
                return False
            if any(u.username == user.username and u.id != user.id for u in self._data.users.values()):
                raise UserExists(user.username)  # SQL refuses it too (a unique username)
            self._data.users[user.id] = replace(_detached(user), created_at=old.created_at)
        return True

    async def change_claims(self, user_id: str, change: ClaimsChange, now: int) -> User | None:
        with self._data.lock:
            user = self._data.users.get(user_id)
            claims = change(copy_json(user.claims)) if user is not None else None
            if user is None or claims is None:
                return None
            user = self._data.users[user_id] = replace(user, claims=copy_json(claims), updated_at=now)
        return _detached(user)

    async def set_password_hash(self, user_id: str, password_hash: str, now: int | None,
                                expected: str | None = None) -> User | None:
        with self._data.lock:
            user = self._data.users.get(user_id)
            if user is None or (expected is not None and user.password_hash != expected):
                return None
            user = replace(user, password_hash=password_hash, updated_at=user.updated_at if now is None else now)
            self._data.users[user_id] = user
        return _detached(user)

    async def set_disabled(self, user_id: str, disabled: bool, now: int) -> User | None:
        with self._data.lock:
            user = self._data.users.get(user_id)
            if user is None:
                return None
            user = self._data.users[user_id] = replace(user, disabled=disabled, updated_at=now)
        return _detached(user)

    async def delete(self, user_id: str) -> bool:
        d = self._data
        with d.lock:
            for digest in [k for k, s in d.sessions.items() if s.user_id == user_id]:
                del d.sessions[digest]
            for pair in [k for k in d.consents if k[0] == user_id]:
                del d.consents[pair]
            d.access.pop(user_id, None)
            for credential_id in [k for k, c in d.passkeys.items() if c.user_id == user_id]:
                del d.passkeys[credential_id]
            d.totp.pop(user_id, None)
            d.recovery_codes.pop(user_id, None)
            for digest in [k for k, link in d.email_links.items() if link.user_id == user_id]:
                del d.email_links[digest]
            for key in [k for k, link in d.federated_identities.items() if link.user_id == user_id]:
                del d.federated_identities[key]
            return d.users.pop(user_id, None) is not None


class MemorySessionStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def create(self, session: Session) -> None:
        with self._data.lock:
            if session.digest in self._data.sessions:
                raise ValueError("a session with this digest is already stored")
            self._data.sessions[session.digest] = session

    async def get(self, digest: str, now: int) -> Session | None:
        with self._data.lock:
            session = self._data.sessions.get(digest)
        return session if session is not None and session.expires_at > now else None

    async def add_client(self, digest: str, client_id: str) -> None:
        with self._data.lock:
            session = self._data.sessions.get(digest)
            if session is not None and client_id not in session.clients:
                self._data.sessions[digest] = replace(session, clients=(*session.clients, client_id))

    async def delete(self, digest: str) -> Session | None:
        with self._data.lock:
            return self._data.sessions.pop(digest, None)

    async def delete_for_user(self, user_id: str, keep: str | None = None) -> int:
        with self._data.lock:
            mine = [k for k, s in self._data.sessions.items() if s.user_id == user_id and k != keep]
            for digest in mine:
                del self._data.sessions[digest]
        return len(mine)

    async def alive(self, sid: str, now: int) -> bool:
        with self._data.lock:
            return any(s.sid == sid and s.expires_at > now for s in self._data.sessions.values())


class MemoryConsentStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def get(self, user_id: str, client_id: str) -> frozenset[str]:
        with self._data.lock:
            return self._data.consents.get((user_id, client_id), frozenset())

    async def grant(self, user_id: str, client_id: str, scopes: frozenset[str]) -> None:
        with self._data.lock:
            key = (user_id, client_id)
            self._data.consents[key] = self._data.consents.get(key, frozenset()) | scopes

    async def revoke(self, user_id: str, client_id: str) -> bool:
        with self._data.lock:
            return self._data.consents.pop((user_id, client_id), None) is not None

    async def list_for_user(self, user_id: str) -> Mapping[str, frozenset[str]]:
        with self._data.lock:
            return {client: scopes for (user, client), scopes in self._data.consents.items() if user == user_id}


class MemoryLoginThrottle:
    """The counters of SqlLoginThrottle, each attempt one step under the lock."""

    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def attempt(self, key: str, rule: ThrottleRule, now: int) -> int:
        with self._data.lock:
            row = self._data.throttle.get(key)
            if row is not None and row.locked_until > now:
                return max(1, row.locked_until - now)  # still waiting: nothing counted
            quiet = row is None or row.locked_until + rule.window < now  # a whole window without attempts
            count = 1 if quiet or row is None else row.count + 1
            self._data.throttle[key] = Throttled(count=count, locked_until=now + rule.delay(count))
        return 0

    async def refund(self, key: str) -> None:
        with self._data.lock:
            row = self._data.throttle.get(key)
            if row is not None and row.count > 0:
                row.count -= 1

    async def reset(self, key: str) -> None:
        with self._data.lock:
            self._data.throttle.pop(key, None)
