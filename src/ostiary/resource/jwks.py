"""The issuer's JWKS, parsed once and cached; refetched when stale or on an unknown ``kid``.

Refetching on an unknown kid is how key rotation reaches the guard without a restart, and it is
rate-limited (``min_refetch_interval``) so that a flood of tokens with made-up kids costs the
issuer at most one request per interval. A failed fetch is remembered for ``failure_backoff``
seconds; meanwhile stale keys keep working, and with no keys at all requests fail fast.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ..client._per_loop import PerLoop
from .compact import PublicKey, parse_jwk
from .errors import IssuerUnavailable
from .metadata import IssuerMetadata

__all__ = ["JwksCache"]

log = logging.getLogger("ostiary.resource")


@dataclass(frozen=True, slots=True)
class _KeySet:
    by_kid: dict[str, PublicKey]
    anonymous: tuple[PublicKey, ...]
    fetched_at: float


class JwksCache:
    """Verification keys by kid; ``get``/``aget`` return a key or None, or raise IssuerUnavailable."""

    def __init__(
        self,
        metadata: IssuerMetadata,
        *,
        jwks_uri: str | None = None,
        max_age: float = 3600.0,
        min_refetch_interval: float = 30.0,
        failure_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata = metadata
        self.jwks_uri = jwks_uri
        self.max_age = max_age
        self.min_refetch_interval = min_refetch_interval
        self.failure_backoff = failure_backoff
        self._clock = clock
        self._keys: _KeySet | None = None
        self._last_refetch = -float("inf")  # last refetch caused by an unknown kid
        self._failed_at = -float("inf")
        self._failure = ""
        self._lock = threading.Lock()
        self._alocks: PerLoop[asyncio.Lock] = PerLoop(asyncio.Lock)  # one per event loop (metadata.py)
        self.fetch_count = 0
        self.generation = 0  # bumped whenever a new key set is installed

    # -- lookup (no I/O) -------------------------------------------------------------------
    def _find(self, kid: str | None, alg: str) -> PublicKey | None:
        keys = self._keys
        if keys is None:
            return None
        if kid is not None:
            key = keys.by_kid.get(kid)
            return key if key is not None and alg in key.algs else None
        fits = [k for k in (*keys.by_kid.values(), *keys.anonymous) if alg in k.algs]
        return fits[0] if len(fits) == 1 else None  # without a kid, only an unambiguous key will do

    def _stale(self, now: float) -> bool:
        return self._keys is None or now - self._keys.fetched_at > self.max_age

    def _may_refetch(self, now: float) -> bool:
        if now - self._last_refetch < self.min_refetch_interval:
            return False
        self._last_refetch = now
        return True

    def _check_backoff(self, now: float) -> bool:
        """True if a fetch may be tried now; raises if it may not and there are no keys to fall back on."""
        if now - self._failed_at >= self.failure_backoff:
            return True
        if self._keys is None:
            raise IssuerUnavailable(self._failure)
        return False

    # -- parsing ----------------------------------------------------------------------------
    def _install(self, response: httpx.Response, now: float) -> None:
        if response.status_code != 200:
            raise IssuerUnavailable(f"JWKS endpoint answered HTTP {response.status_code}")
        try:
            doc = response.json()
        except ValueError as exc:
            raise IssuerUnavailable("JWKS is not JSON") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise IssuerUnavailable("JWKS has no keys array")
        by_kid: dict[str, PublicKey] = {}
        anonymous: list[PublicKey] = []
        for jwk in doc["keys"]:
            key = parse_jwk(jwk) if isinstance(jwk, dict) else None
            if key is None:
                continue
            if key.kid is None:
                anonymous.append(key)
            else:
                by_kid.setdefault(key.kid, key)
        self._keys = _KeySet(by_kid=by_kid, anonymous=tuple(anonymous), fetched_at=now)
        self.fetch_count += 1
        self.generation += 1

    def _failed(self, now: float, exc: Exception) -> None:
        self._failed_at = now
        self._failure = str(exc) if isinstance(exc, IssuerUnavailable) else f"JWKS unreachable: {type(exc).__name__}"
        log.warning("ostiary guard: cannot refresh the JWKS of %s: %s", self.metadata.issuer, self._failure)
        if self._keys is None:
            raise IssuerUnavailable(self._failure) from exc

    # -- sync -------------------------------------------------------------------------------
    def _refresh(self, seen: _KeySet | None) -> None:
        with self._lock:
            now = self._clock()
            if self._keys is not seen or not self._check_backoff(now):
                return  # another thread refreshed meanwhile, or we are backing off with stale keys
            try:
                uri = self.jwks_uri or self.metadata.endpoint(self.metadata.get(), "jwks_uri")
                self._install(self.metadata.http.get(uri, headers={"Accept": "application/json"}), now)
            except (httpx.HTTPError, IssuerUnavailable) as exc:
                self._failed(now, exc)

    def get(self, kid: str | None, alg: str) -> PublicKey | None:
        now = self._clock()
        keys = self._keys
        if keys is not None and kid is not None and now - keys.fetched_at <= self.max_age:  # the hot path
            hit = keys.by_kid.get(kid)
            if hit is not None and alg in hit.algs:
                return hit
        if self._stale(now):
            self._refresh(self._keys)
        key = self._find(kid, alg)
        if key is None and self._may_refetch(now):
            self._refresh(self._keys)
            key = self._find(kid, alg)
        return key

    # -- async ------------------------------------------------------------------------------
    async def _arefresh(self, seen: _KeySet | None) -> None:
        async with self._alocks.get():
            now = self._clock()
            if self._keys is not seen or not self._check_backoff(now):
                return
            try:
                uri = self.jwks_uri or self.metadata.endpoint(await self.metadata.aget(), "jwks_uri")
                response = await self.metadata.async_http.get(uri, headers={"Accept": "application/json"})
                self._install(response, now)
            except (httpx.HTTPError, IssuerUnavailable) as exc:
                self._failed(now, exc)

    async def aget(self, kid: str | None, alg: str) -> PublicKey | None:
        now = self._clock()
        if self._stale(now):
            await self._arefresh(self._keys)
        key = self._find(kid, alg)
        if key is None and self._may_refetch(now):
            await self._arefresh(self._keys)
            key = self._find(kid, alg)
        return key
