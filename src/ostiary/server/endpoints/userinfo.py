"""UserInfo (OIDC Core §5.3) with RFC 6750 bearer tokens."""

from __future__ import annotations

from typing import Any

from ...errors import InsufficientScope, InvalidToken
from ...store import TokenStore
from ...store.identity import UserStore
from ..claims import user_claims
from ..credentials import digest
from ..inspection import TokenInspector

__all__ = ["UserinfoEndpoint"]


class UserinfoEndpoint:
    def __init__(self, inspector: TokenInspector, users: UserStore, tokens: TokenStore) -> None:
        self._inspector = inspector
        self._users = users
        self._tokens = tokens

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
        return user_claims(user, scope, requested if isinstance(requested, dict) else None)
