"""TokenVerifier: bearer token in, verified Principal out (or a GuardError saying why not).

JWT access tokens (RFC 9068) are checked locally against the issuer's cached JWKS; anything else
is treated as opaque and, if configured, introspected (RFC 7662). Sync and async APIs share all
logic but the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import httpx

from .claims import RFC9068_REQUIRED, check_claims, principal_from_claims
from .compact import SUPPORTED_ALGS, PublicKey, SplitToken, decode_payload, split_token
from .errors import InvalidToken
from .introspection import Introspection, IntrospectionCache
from .jwks import JwksCache
from .metadata import DEFAULT_TIMEOUT, IssuerMetadata
from .principal import Principal

__all__ = ["DEFAULT_ALGORITHMS", "TokenVerifier"]

DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")


class TokenVerifier:
    """Verifies access tokens issued by ``issuer`` for ``audience``.

    Raises from ``verify``/``averify``: InvalidToken (401), IssuerUnavailable (503) when keys or
    introspection cannot be fetched in time.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        *,
        jwks_uri: str | None = None,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        accept_plain_jwt: bool = False,
        required_claims: Collection[str] = RFC9068_REQUIRED,
        leeway: float = 30.0,
        introspection: Introspection | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        jwks_max_age: float = 3600.0,
        min_refetch_interval: float = 30.0,
        failure_backoff: float = 5.0,
        verified_cache_size: int = 4096,
        http: httpx.Client | None = None,
        async_http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unknown = set(algorithms) - SUPPORTED_ALGS
        if unknown:  # RFC 8725 §3.1: none and HMAC can never verify an issuer's token here
            raise ValueError(f"unsupported algorithms for access tokens: {sorted(unknown)}")
        self.issuer = issuer
        self.audiences = frozenset({audience} if isinstance(audience, str) else audience)
        self.algorithms = frozenset(algorithms)
        # RFC 9068 §4: typ must be at+jwt; plain JWT (or no typ) only if asked for
        self.typs: frozenset[str | None] = frozenset(
            {"at+jwt", "jwt", None} if accept_plain_jwt else {"at+jwt"}
        )
        self.required_claims = tuple(required_claims)
        self.leeway = leeway
        self._clock = clock
        self.metadata = IssuerMetadata(issuer, timeout=timeout, http=http, async_http=async_http)
        self.jwks = JwksCache(
            self.metadata,
            jwks_uri=jwks_uri,
            max_age=jwks_max_age,
            min_refetch_interval=min_refetch_interval,
            failure_backoff=failure_backoff,
        )
        self._headers: dict[str, tuple[str | None, str]] = {}  # header segment -> (kid, alg), checked
        # Clients present the same token until it expires: remember verified tokens (bounded, exp
        # re-checked on every hit, flushed whenever the key set changes).
        self._verified: dict[str, Principal] = {}
        self._verified_size = verified_cache_size
        self._verified_generation = 0
        self.introspector = (
            IntrospectionCache(introspection, self.metadata, audiences=self.audiences, leeway=leeway, clock=clock)
            if introspection is not None
            else None
        )

    # -- shared, no I/O -------------------------------------------------------------------
    def _split(self, token: str) -> tuple[SplitToken, str | None, str] | None:
        """The token's parts, kid and alg if it is a JWS; None if it looks opaque."""
        if token.count(".") != 2:
            return None
        try:
            parts = split_token(token)
            # An issuer signs every token with a handful of distinct headers: check each one once.
            known = self._headers.get(parts.header_b64)
            if known is not None:
                return parts, *known
            header = parts.header()
        except InvalidToken:
            if self.introspector is None:
                raise
            return None
        checked = self._check_header(header)
        if len(self._headers) >= 1024:
            self._headers.clear()
        self._headers[parts.header_b64] = checked
        return parts, *checked

    def _check_header(self, header: dict[str, Any]) -> tuple[str | None, str]:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:  # RFC 8725 §3.1
            raise InvalidToken(f"algorithm {alg!r} is not allowed")
        if "crit" in header:  # RFC 7515 §4.1.11: we understand no extensions
            raise InvalidToken("token has critical header parameters we do not understand")
        typ = header.get("typ")
        normal = typ.lower().removeprefix("application/") if isinstance(typ, str) else typ
        if normal not in self.typs:
            raise InvalidToken(f"token typ {typ!r} is not accepted (RFC 9068 needs at+jwt)")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed kid")
        return kid, alg

    def _finish(self, token: str, parts: SplitToken, alg: str, key: PublicKey | None) -> Principal:
        if key is None:
            raise InvalidToken("no key of the issuer matches the token")
        if not key.verify(alg, parts.signing_input, parts.signature()):
            raise InvalidToken("signature does not verify")
        claims = decode_payload(parts.payload_b64)
        check_claims(
            claims,
            issuer=self.issuer,
            audiences=self.audiences,
            required=self.required_claims,
            leeway=self.leeway,
            now=self._clock(),
        )
        return principal_from_claims(claims, token)

    def _recall(self, token: str) -> Principal | None:
        if self._verified_generation != self.jwks.generation:
            self._verified.clear()
            self._verified_generation = self.jwks.generation
            return None
        hit = self._verified.get(token)
        if hit is not None and hit.expires_at is not None and hit.expires_at + self.leeway <= self._clock():
            del self._verified[token]  # expired since: verify again, which says so
            return None
        return hit

    def _remember(self, token: str, principal: Principal) -> Principal:
        if self._verified_size > 0:
            if self._verified_generation != self.jwks.generation:  # verified with a newer key set
                self._verified.clear()
                self._verified_generation = self.jwks.generation
            if len(self._verified) >= self._verified_size:
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[token] = principal
        return principal

    def _opaque(self) -> IntrospectionCache:
        if self.introspector is None:
            raise InvalidToken("not a JWT access token")
        return self.introspector

    # -- public -----------------------------------------------------------------------------
    def verify(self, token: str) -> Principal:
        """Verify ``token``; raises InvalidToken or IssuerUnavailable."""
        known = self._recall(token)
        if known is not None:
            return known
        split = self._split(token)
        if split is None:
            return self._opaque().introspect(token)
        parts, kid, alg = split
        return self._remember(token, self._finish(token, parts, alg, self.jwks.get(kid, alg)))

    async def averify(self, token: str) -> Principal:
        """Async verify; raises InvalidToken or IssuerUnavailable."""
        known = self._recall(token)
        if known is not None:
            return known
        split = self._split(token)
        if split is None:
            return await self._opaque().aintrospect(token)
        parts, kid, alg = split
        return self._remember(token, self._finish(token, parts, alg, await self.jwks.aget(kid, alg)))

    def close(self) -> None:
        self.metadata.close()

    async def aclose(self) -> None:
        await self.metadata.aclose()
