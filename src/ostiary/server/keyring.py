"""The server's signing keys: which key signs, which keys are published, and rotation.

Lifecycle (DESIGN: keys): a key is created "next" and published at once; `rotate` makes the next
key "active" (it signs from then on), retires the old active key, and creates a new next key. A
retired key stays in the JWKS until every token it signed has expired (`publish_until`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence

import orjson
from joserfc.jwk import KeySet

from ..keys import KeyStatus, SigningKey, jwks_document, key_set
from ..store import KeyStore
from .audit import audit

__all__ = ["KeyRing", "ensure_keys", "rotate"]


class KeyRing:
    """Cached view of the key store; reloads at most every `ttl` seconds (keys change on other nodes)."""

    def __init__(self, store: KeyStore, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._loaded_at = float("-inf")
        self._active: dict[str, SigningKey] = {}
        self._published: list[SigningKey] = []
        self._jwks = b'{"keys":[]}'
        self._verify_set = KeySet([])
        self._reloading: asyncio.Task[None] | None = None

    async def refresh(self, *, force: bool = False) -> None:
        """Reload when older than `ttl`; in its last fifth, in the background (refresh-ahead)."""
        age = time.monotonic() - self._loaded_at
        if not force and age < self._ttl:
            if age > 0.8 * self._ttl and self._reloading is None:
                self._reloading = asyncio.create_task(self._reload())
            return
        await self._reload()

    async def _reload(self) -> None:
        try:
            keys = await self._store.list()
            self._loaded_at = time.monotonic()
            self._install(keys)
        finally:
            self._reloading = None

    def _install(self, keys: Sequence[SigningKey]) -> None:
        now = dt.datetime.now(dt.UTC)
        active: dict[str, SigningKey] = {}
        for key in keys:
            if key.status == "active":
                active[key.alg] = key  # newest active key per algorithm wins (list is oldest first)
        published = [
            k for k in keys
            if k.status in ("active", "next") or (k.publish_until is not None and k.publish_until > now)
        ]
        self._active = active
        self._published = published
        self._jwks = orjson.dumps(jwks_document(published))
        self._verify_set = key_set(published)

    async def signing_key(self, alg: str) -> SigningKey:
        await self.refresh()
        key = self._active.get(alg)
        if key is None:
            await self.refresh(force=True)
            key = self._active.get(alg)
            if key is None:
                raise LookupError(f"no active signing key for {alg}")
        return key

    async def jwks_json(self) -> bytes:
        await self.refresh()
        return self._jwks

    async def verification_keys(self) -> KeySet:
        await self.refresh()
        return self._verify_set

    def cached_verification_keys(self) -> KeySet:
        """The published keys as last loaded (call refresh() first where freshness matters)."""
        return self._verify_set

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(sorted(self._active))


async def ensure_keys(store: KeyStore, algorithms: Sequence[str]) -> list[SigningKey]:
    """Create an active and a next key for every algorithm that has none; returns what was created."""
    existing = await store.list()
    created: list[SigningKey] = []
    for alg in algorithms:
        statuses: tuple[KeyStatus, ...] = ("active", "next")
        for status in statuses:
            if not any(k.alg == alg and k.status == status for k in existing):
                key = SigningKey.generate(alg, status=status)
                if await store.add(key):
                    created.append(key)
    return created


async def rotate(store: KeyStore, alg: str, max_token_lifetime: int) -> tuple[SigningKey, SigningKey]:
    """Promote the published next key for `alg`, retire the old one, publish a new next key.

    Returns (new active key, new next key). If no next key was published (an imported setup),
    one is created and promoted at once: resource servers with a cached JWKS refetch on its kid.
    """
    keys = await store.list()
    # The newest published next key: an imported key (`keys import`) wins over the generated one.
    waiting = [k for k in keys if k.alg == alg and k.status == "next"]
    nxt = waiting[-1] if waiting else None
    if nxt is None:
        nxt = SigningKey.generate(alg, status="next")
        await store.add(nxt)
    until = int(time.time()) + max_token_lifetime
    for key in keys:
        if key.alg == alg and key.status == "active":
            await store.set_status(key.kid, "retired", publish_until=until)
    await store.set_status(nxt.kid, "active")
    remaining = [k for k in waiting if k.kid != nxt.kid]
    audit("signing_key_rotated", alg=alg, active=nxt.kid)
    new_next = remaining[-1] if remaining else SigningKey.generate(alg, status="next")
    if not remaining:
        await store.add(new_next)
    promoted = SigningKey(alg=nxt.alg, jwk=nxt.jwk, certificates=nxt.certificates, status="active",
                          created_at=nxt.created_at)
    return promoted, new_next


async def prune(store: KeyStore) -> list[str]:
    """Delete retired keys that are no longer published; returns their kids."""
    now = dt.datetime.now(dt.UTC)
    gone = [k.kid for k in await store.list()
            if k.status == "retired" and (k.publish_until is None or k.publish_until <= now)]
    for kid in gone:
        await store.delete(kid)
    return gone


async def activate(store: KeyStore, key: SigningKey, max_token_lifetime: int) -> bool:
    """Make an imported key the active one for its algorithm; False if it already was."""
    keys = await store.list()
    current = next((k for k in keys if k.kid == key.kid), None)
    if current is not None and current.status == "active":
        return False
    if current is None:
        await store.add(SigningKey(alg=key.alg, jwk=key.jwk, certificates=key.certificates, status="next"))
    until = int(time.time()) + max_token_lifetime
    for other in keys:
        if other.alg == key.alg and other.status == "active" and other.kid != key.kid:
            await store.set_status(other.kid, "retired", publish_until=until)
    await store.set_status(key.kid, "active")
    return True
