"""Finding out what a presented token is: shared by introspection, revocation and userinfo."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import jwt
from ..store import TokenStore
from .client_auth import ClientLookup
from .credentials import digest
from .keyring import KeyRing

__all__ = ["KnownToken", "TokenInspector"]


@dataclass(frozen=True, slots=True)
class KnownToken:
    """A token this server issued, signature-checked (JWT) or found by digest (opaque)."""

    claims: Mapping[str, Any]
    kind: str  # "access_token" | "refresh_token"
    digest: str | None  # set for stored tokens
    active: bool
    grant_id: str | None = None

    @property
    def client_id(self) -> str:
        return str(self.claims.get("client_id", ""))

    @property
    def jti(self) -> str:
        return str(self.claims.get("jti", ""))


class TokenInspector:
    def __init__(self, issuer: str, keyring: KeyRing, tokens: TokenStore, clients: ClientLookup,
                 subject_revoked: Callable[[Mapping[str, Any]], bool] = lambda claims: False) -> None:
        self._issuer = issuer
        self._keyring = keyring
        self._tokens = tokens
        self._clients = clients
        # Users whose tokens were all ended (disabled, deleted): known in memory, no query (server.changes).
        self._subject_revoked = subject_revoked

    async def find(self, token: str) -> KnownToken | None:
        """The token if this server issued it and it has not expired; None otherwise.

        `active` is False for revoked or rotated-out tokens, tokens of revoked grants, of disabled
        users and of clients that no longer exist.
        """
        if len(token) > 8192:
            return None
        if token.count(".") == 2:
            return await self._find_jwt(token)
        record = await self._tokens.find(digest(token))
        if record is None or record.expires_at <= time.time():
            return None
        # A rotated-out refresh token (RFC 9700 §4.14.2) and a token of a revoked grant are inactive.
        active = (not record.revoked and record.consumed_at is None and not self._subject_revoked(record.claims)
                  and not (record.grant_id and await self._tokens.is_grant_revoked(record.grant_id))
                  and await self._client_exists(record.client_id))
        if record.kind == "refresh_token":  # stored facts of the grant -> RFC 7662 §2.2 members
            facts = record.claims
            claims: dict[str, Any] = {
                "iss": self._issuer, "sub": facts.get("user_id"), "client_id": record.client_id,
                "scope": " ".join(facts.get("scope", ())), "exp": record.expires_at, "jti": record.jti,
            }
        else:
            claims = {k: v for k, v in record.claims.items() if k != "userinfo_claims"}
        return KnownToken(claims=claims, kind=record.kind, digest=record.digest, active=active,
                          grant_id=record.grant_id)

    async def _find_jwt(self, token: str) -> KnownToken | None:
        try:
            verified = jwt.verify(
                token, await self._keyring.verification_keys(), issuer=self._issuer, typ="at+jwt",
                leeway=0, required=("exp", "jti", "client_id"),
            )
        except jwt.JWTInvalid:
            return None
        claims = verified.claims
        active = (
            not self._subject_revoked(claims)
            and not await self._tokens.is_jti_revoked(str(claims["jti"]))
            and await self._client_exists(str(claims["client_id"]))
        )
        return KnownToken(claims=claims, kind="access_token", digest=None, active=active)

    async def _client_exists(self, client_id: str) -> bool:
        return await self._clients.get(client_id) is not None
