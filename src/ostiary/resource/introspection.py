"""Opaque tokens: ask the issuer (RFC 7662) and cache the answer, never past the token's ``exp``.

Active answers are cached for ``min(max_cache_ttl, exp - now)``; inactive ones for
``negative_cache_ttl`` (short, so a token that just became valid is not refused for long). The
cache is keyed by a SHA-256 of the token, so no usable token sits in memory as a dict key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..client.auth_methods import ClientAuth
from .claims import principal_from_claims
from .errors import InvalidToken, IssuerUnavailable
from .metadata import IssuerMetadata
from .principal import Principal

__all__ = ["Introspection", "IntrospectionCache"]

ACCESS_TYPES = frozenset({"bearer", "dpop"})  # RFC 6750, RFC 9449


@dataclass(frozen=True, slots=True)
class Introspection:
    """How to introspect: the resource server's own client credentials and, optionally, the endpoint."""

    client_auth: ClientAuth
    endpoint: str | None = None  # default: the issuer's introspection_endpoint
    # An answer must name this resource server in `aud` (RFC 7662 §4: a token for another API is
    # refused). False only for a foreign issuer whose introspection answers omit `aud`.
    require_audience: bool = True
    max_cache_ttl: float = 60.0
    negative_cache_ttl: float = 5.0
    max_entries: int = 10_000


class IntrospectionCache:
    """Introspects tokens for one issuer and audience, with the cache described above."""

    def __init__(
        self,
        config: Introspection,
        metadata: IssuerMetadata,
        *,
        audiences: frozenset[str],
        leeway: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.metadata = metadata
        self.audiences = audiences
        self.leeway = leeway
        self._clock = clock
        self._cache: dict[bytes, tuple[float, Principal | str]] = {}
        self.request_count = 0

    def _cached(self, digest: bytes, now: float) -> Principal | None:
        hit = self._cache.get(digest)
        if hit is None:
            return None
        until, value = hit
        if until <= now:
            self._cache.pop(digest, None)
            return None
        if isinstance(value, str):
            raise InvalidToken(value)
        return value

    def _store(self, digest: bytes, until: float, value: Principal | str) -> None:
        if len(self._cache) >= self.config.max_entries:
            self._cache.pop(next(iter(self._cache)), None)  # drop the oldest entry
        self._cache[digest] = (until, value)

    def _request(self, token: str, endpoint: str) -> tuple[dict[str, str], dict[str, str]]:
        headers = {"Accept": "application/json"}
        form = {"token": token, "token_type_hint": "access_token"}
        self.config.client_auth.apply(endpoint, headers, form)
        return headers, form

    def _judge(self, response: httpx.Response, token: str, digest: bytes, now: float) -> Principal:
        self.request_count += 1
        if response.status_code != 200:
            raise IssuerUnavailable(f"introspection endpoint answered HTTP {response.status_code}")
        try:
            doc: Any = response.json()
        except ValueError as exc:
            raise IssuerUnavailable("introspection answer is not JSON") from exc
        if not isinstance(doc, dict):
            raise IssuerUnavailable("introspection answer is not a JSON object")
        reason = self._reason(doc, now)
        if reason is not None:
            self._store(digest, now + self.config.negative_cache_ttl, reason)
            raise InvalidToken(reason)
        principal = principal_from_claims(doc, token)
        until = now + self.config.max_cache_ttl
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)  # never cache past the token's lifetime
        self._store(digest, until, principal)
        return principal

    def _reason(self, doc: dict[str, Any], now: float) -> str | None:
        if doc.get("active") is not True:  # RFC 7662 §2.2
            return "token is not active"
        if "iss" in doc and doc["iss"] != self.metadata.issuer:
            return "token has the wrong issuer"
        aud = doc.get("aud")
        if aud is None:
            if self.config.require_audience:
                return "the introspection answer names no audience"
        else:
            auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
            if not auds & self.audiences:
                return "token is not meant for this audience"
        token_type = doc.get("token_type")  # RFC 6749 §7.1: case-insensitive; a refresh token is never accepted
        if token_type is not None and (not isinstance(token_type, str) or token_type.lower() not in ACCESS_TYPES):
            return "token is not an access token"
        exp = doc.get("exp")
        if isinstance(exp, int | float) and exp + self.leeway <= now:
            return "token has expired"
        return None

    def introspect(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._cached(digest, now)
        if cached is not None:
            return cached
        endpoint = self.config.endpoint or self.metadata.endpoint(self.metadata.get(), "introspection_endpoint")
        headers, form = self._request(token, endpoint)
        try:
            response = self.metadata.http.post(endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise IssuerUnavailable(f"introspection endpoint unreachable: {type(exc).__name__}") from exc
        return self._judge(response, token, digest, now)

    async def aintrospect(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._cached(digest, now)
        if cached is not None:
            return cached
        endpoint = self.config.endpoint or self.metadata.endpoint(
            await self.metadata.aget(), "introspection_endpoint"
        )
        headers, form = self._request(token, endpoint)
        try:
            response = await self.metadata.async_http.post(endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise IssuerUnavailable(f"introspection endpoint unreachable: {type(exc).__name__}") from exc
        return self._judge(response, token, digest, now)
