"""Client public keys for private_key_jwt: registered `jwks` values or a `jwks_uri`, fetched and cached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from joserfc.jwk import KeySet

from ..errors import InvalidClient
from ..keys import KeyError_, import_jwk
from ..outbound import FetchError, SafeFetcher

__all__ = ["ClientKeyResolver", "key_set_from_jwks"]

MAX_JWKS_BYTES = 256 * 1024


def key_set_from_jwks(jwks: Mapping[str, Any]) -> KeySet:
    """A KeySet from a JWKS document; raises KeyError_ if it is not one."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise KeyError_("a JWKS needs a non-empty 'keys' array")
    imported = []
    for item in keys:
        if not isinstance(item, dict):
            raise KeyError_("every JWKS entry must be an object")
        key = import_jwk(item)
        if key.is_private:
            raise KeyError_("a client JWKS must hold public keys only")
        imported.append(key)
    return KeySet(imported)


class ClientKeyResolver:
    """Fetches `jwks_uri` documents through the safe fetcher, caches them, refetches once on an unknown kid."""

    def __init__(self, fetcher: SafeFetcher, *, timeout: float, ttl: float, min_refetch_interval: float = 10.0) -> None:
        self._fetcher = fetcher
        self._timeout = timeout
        self._ttl = ttl
        self._min_interval = min_refetch_interval
        self._cache: dict[str, tuple[float, KeySet]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def keys_for(self, *, jwks: Mapping[str, Any] | None, jwks_uri: str | None,
                       kid: str | None) -> KeySet:
        """Raises InvalidClient when the client has no usable keys."""
        if jwks:
            try:
                return key_set_from_jwks(jwks)
            except KeyError_ as exc:
                raise InvalidClient(f"registered jwks unusable: {exc}") from None
        if not jwks_uri:
            raise InvalidClient("the client has no registered keys")
        now = time.monotonic()
        cached = self._cache.get(jwks_uri)
        if cached:
            fetched_at, keyset = cached
            fresh = now - fetched_at < self._ttl
            known = kid is None or any(k.kid == kid for k in keyset.keys)
            if fresh and (known or now - fetched_at < self._min_interval):
                return keyset
        lock = self._locks.setdefault(jwks_uri, asyncio.Lock())
        async with lock:
            cached = self._cache.get(jwks_uri)
            if cached and time.monotonic() - cached[0] < self._min_interval:
                return cached[1]
            keyset = await self._fetch(jwks_uri)
            self._cache[jwks_uri] = (time.monotonic(), keyset)
            return keyset

    async def _fetch(self, uri: str) -> KeySet:
        # The reason stays in the log: the answer must not tell what listens where (SSRF probing).
        try:
            data = (await self._fetcher.get(uri, deadline=self._timeout, max_bytes=MAX_JWKS_BYTES)).json()
        except FetchError:
            raise InvalidClient("the client's jwks_uri could not be fetched") from None
        try:
            if not isinstance(data, dict):
                raise KeyError_("not a JSON object")
            return key_set_from_jwks(data)
        except KeyError_ as exc:
            raise InvalidClient(f"the client's jwks_uri holds no usable JWKS: {exc}") from None
