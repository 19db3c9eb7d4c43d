"""UserInfo (OIDC Core §5.3) with RFC 6750 bearer tokens."""

from __future__ import annotations

from typing import Any

from ...errors import InsufficientScope, InvalidToken
from ...store import TokenStore
from ...store.identity import UserStore
from ..claims import FhirUserLookup, user_claims
from ..client_auth import ClientLookup
from ..credentials import digest
from ..inspection import TokenInspector
from ..subjects import SubjectMapper

__all__ = ["UserinfoEndpoint"]


class UserinfoEndpoint:
    def __init__(self, inspector: TokenInspector, users: UserStore, tokens: TokenStore, *,
                 subjects: tuple[SubjectMapper, ClientLookup] | None = None,
                 fhir_user: FhirUserLookup | None = None) -> None:
        self._inspector = inspector
        self._users = users
        self._tokens = tokens
        self._subjects = subjects  # pairwise `sub` (OIDC Core §8.1): the mapper and the token's client
        self._fhir_user = fhir_user

    async def handle(self, token: str) -> dict[str, Any]:
        """The user's claims; raises InvalidToken (401) or InsufficientScope (403)."""
        found = await self._inspector.find(token)
        if found is None or not found.active or found.kind != "access_token":
            raise InvalidToken("the access token is invalid, expired or revoked")
        scope = str(found.claims.get("scope", "")).split()
        if "openid" not in scope:
            raise InsufficientScope("userinfo needs a token with the openid scope")
        user = await self._users.get(str(found.claims.get("sub")))
        if user is None or user.disabled:
            raise InvalidToken("the token does not belong to an active user")
        record = await self._tokens.find(digest(token))
        requested = record.claims.get("userinfo_claims") if record else None
        fhir_user = await self._fhir_user(user.id) if self._fhir_user else None
        claims = user_claims(user, scope, requested if isinstance(requested, dict) else None, fhir_user=fhir_user)
        client = await self._subjects[1].get(str(found.claims.get("client_id"))) if self._subjects else None
        if self._subjects is not None and client is not None:  # the token's sub stays the internal id
            claims["sub"] = await self._subjects[0].subject(client, user.id)
        return claims
