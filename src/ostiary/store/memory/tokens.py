"""In-memory tokens: consumption, grant-level revocation and purging, as SqlTokenStore does them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from ..protocols import TokenRecord
from .data import MemoryData, copy_json

__all__ = ["GRANT_MARK_TTL", "MemoryTokenStore"]

# How long a grant's revoked mark outlives its last token at least (as in SQL: issues still in flight).
GRANT_MARK_TTL = 24 * 3600


def _detached(record: TokenRecord) -> TokenRecord:
    return replace(record, claims=copy_json(record.claims))


class MemoryTokenStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def save(self, record: TokenRecord) -> None:
        stored = _detached(record)
        with self._data.lock:
            if record.digest in self._data.tokens:
                raise ValueError("a token with this digest is already stored")
            self._data.tokens[record.digest] = stored

    async def find(self, digest: str) -> TokenRecord | None:
        with self._data.lock:
            record = self._data.tokens.get(digest)
        return _detached(record) if record is not None else None

    async def revoke(self, digest: str) -> bool:
        return self._change(digest, revoked=True)

    def _change(self, digest: str, **changes: Any) -> bool:
        with self._data.lock:
            record = self._data.tokens.get(digest)
            if record is None:
                return False
            self._data.tokens[digest] = replace(record, **changes)
        return True

    async def revoke_jti(self, jti: str, expires_at: int) -> None:
        with self._data.lock:
            self._data.revoked_jtis.setdefault(jti, expires_at)

    async def is_jti_revoked(self, jti: str) -> bool:
        with self._data.lock:
            return jti in self._data.revoked_jtis

    async def consume(self, digest: str, now: int) -> TokenRecord | None:
        with self._data.lock:  # the check and the mark are one step (RFC 9700 §4.14.2: one winner)
            record = self._data.tokens.get(digest)
            if (record is None or record.consumed_at is not None or record.revoked or record.expires_at <= now
                    or (record.grant_id is not None and record.grant_id in self._data.revoked_grants)):
                return None
            consumed = replace(record, consumed_at=now)
            self._data.tokens[digest] = consumed
        return _detached(consumed)

    async def revoke_grant(self, grant_id: str) -> int:
        now = int(time.time())
        with self._data.lock:
            mine = [t for t in self._data.tokens.values() if t.grant_id == grant_id]
            until = max([now + GRANT_MARK_TTL, *(t.expires_at for t in mine)])
            self._data.revoked_grants.setdefault(grant_id, until)
            for token in mine:
                if token.kind == "access_token":
                    self._data.revoked_jtis.setdefault(token.jti, token.expires_at)
            newly = [t for t in mine if not t.revoked]
            for token in newly:
                self._data.tokens[token.digest] = replace(token, revoked=True)
        return len(newly)

    async def set_successor(self, digest: str, sealed: str) -> bool:
        return self._change(digest, successor=sealed)

    async def is_grant_revoked(self, grant_id: str) -> bool:
        with self._data.lock:
            return grant_id in self._data.revoked_grants

    async def grant_ids_for(self, client_id: str | None, user_id: str) -> set[str]:
        with self._data.lock:
            return {t.grant_id for t in self._data.tokens.values()
                    if t.grant_id is not None and (client_id is None or t.client_id == client_id)
                    and user_id in (t.claims.get("sub"), t.claims.get("user_id"))}

    async def purge_expired(self, now: int) -> int:
        """Everything expired before `now`, in every table (as SqlTokenStore.purge_expired)."""
        d = self._data
        with d.lock:
            n = _drop(d.tokens, lambda t: t.expires_at < now)
            for table in (d.revoked_jtis, d.revoked_grants, d.replay):
                n += _drop(table, lambda until: until < now)
            n += _drop(d.codes, lambda c: c.expires_at < now)
            n += _drop(d.interactions, lambda entry: entry[1] < now)
            n += _drop(d.sessions, lambda s: s.expires_at < now)
            n += _drop(d.throttle, lambda t: t.locked_until < now - 86400)  # a day without an attempt
        return n


K = TypeVar("K")
V = TypeVar("V")


def _drop(table: dict[K, V], expired: Callable[[V], bool]) -> int:
    gone = [k for k, v in table.items() if expired(v)]
    for key in gone:
        del table[key]
    return len(gone)
