"""Issuing access tokens: RFC 9068 JWTs (stateless) or opaque reference tokens (stored by digest)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import jwt
from ..store import Client, TokenRecord, TokenStore
from .credentials import digest, new_token
from .keyring import KeyRing

__all__ = ["IssuedToken", "TokenIssuer", "TokenPolicy"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    value: str
    expires_in: int
    claims: Mapping[str, Any]


class TokenPolicy(Protocol):
    """The narrow slice of settings the issuer needs (fosite-style per-handler config)."""

    @property
    def access_token_format(self) -> str: ...
    @property
    def access_token_lifetime(self) -> int: ...
    @property
    def signing_alg(self) -> str: ...


def _audience(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


class TokenIssuer:
    def __init__(self, issuer: str, keyring: KeyRing, store: TokenStore, policy: TokenPolicy) -> None:
        self.issuer = issuer
        self._keyring = keyring
        self._store = store
        self._policy = policy
        self._signers: dict[str, jwt.CompactSigner] = {}

    def lifetime_for(self, client: Client) -> int:
        """Server policy; an administrator may cap it per client, never raise it (docs/security.md)."""
        return min(client.access_token_lifetime or self._policy.access_token_lifetime,
                   self._policy.access_token_lifetime)

    async def issue_access_token(
        self,
        client: Client,
        *,
        subject: str,
        scope: Sequence[str],
        audience: Sequence[str],
        extra: Mapping[str, Any] | None = None,
        grant_id: str | None = None,
        stored_extra: Mapping[str, Any] | None = None,
        max_lifetime: int | None = None,
    ) -> IssuedToken:
        """An access token for `client`; JWT (RFC 9068 §2) or opaque per the client or server default."""
        now = int(time.time())
        lifetime = self.lifetime_for(client)
        if max_lifetime is not None:
            lifetime = min(lifetime, max_lifetime)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": _audience(audience),
            "exp": now + lifetime,
            "iat": now,
            "jti": new_token(16),
            "client_id": client.client_id,
        }
        if scope:
            claims["scope"] = " ".join(scope)
        if extra:
            claims.update(extra)
        fmt = client.access_token_format or self._policy.access_token_format
        if fmt == "opaque":
            value = new_token(32)
        else:
            key = await self._keyring.signing_key(self._policy.signing_alg)
            signer = self._signers.get(key.kid)
            if signer is None:
                # RFC 9068 §2.1: typ "at+jwt" so an access token can never pass as an ID token.
                self._signers = {key.kid: jwt.CompactSigner(key, typ="at+jwt")}
                signer = self._signers[key.kid]
            value = signer.sign(claims)
        # Stateless JWTs are stored only when they belong to a grant that may have to be revoked
        # as a whole (code replay, refresh reuse); client_credentials JWTs cost no write.
        if fmt == "opaque" or grant_id is not None:
            await self._store.save(TokenRecord(
                digest=digest(value), kind="access_token", client_id=client.client_id,
                jti=claims["jti"], claims={**claims, **(stored_extra or {})}, expires_at=claims["exp"],
                grant_id=grant_id,
            ))
        return IssuedToken(value=value, expires_in=lifetime, claims=claims)

    async def settle_grant(self, grant_id: str) -> bool:
        """Call after saving a grant's tokens: if the grant was revoked meanwhile, revoke them too
        (the mark is committed before the revoker's sweep, so one of the two always sees the other)."""
        if not await self._store.is_grant_revoked(grant_id):
            return False
        await self._store.revoke_grant(grant_id)
        return True

    async def issue_refresh_token(self, client: Client, *, claims: Mapping[str, Any], grant_id: str,
                                  expires_at: int) -> str:
        """An opaque refresh token (stored by digest) belonging to `grant_id`."""
        value = new_token(32)
        await self._store.save(TokenRecord(
            digest=digest(value), kind="refresh_token", client_id=client.client_id, jti=new_token(16),
            claims=dict(claims), expires_at=expires_at, grant_id=grant_id,
        ))
        return value
