"""Token revocation (RFC 7009): stored tokens are marked, self-contained JWTs revoked by jti."""

from __future__ import annotations

from ...errors import InvalidRequest, UnauthorizedClient
from ...store import TokenStore
from ..audit import audit
from ..client_auth import ClientAuthenticator
from ..inspection import TokenInspector
from ..requests import EndpointRequest

__all__ = ["RevocationEndpoint"]


class RevocationEndpoint:
    def __init__(self, authenticator: ClientAuthenticator, inspector: TokenInspector, tokens: TokenStore) -> None:
        self._authenticator = authenticator
        self._inspector = inspector
        self._tokens = tokens

    async def handle(self, request: EndpointRequest) -> None:
        """Revoke the token; raises OAuthError. Unknown or expired tokens are fine (RFC 7009 §2.2)."""
        client = await self._authenticator.authenticate(request, allow_public=True, token_endpoint=False)
        token = request.get("token")
        if not token:
            raise InvalidRequest("token is missing")
        # token_type_hint is only a hint (RFC 7009 §2.1): we look in every place anyway.
        found = await self._inspector.find(token)
        if found is None:
            return
        if found.client_id != client.client_id:
            raise UnauthorizedClient("the token was not issued to this client (RFC 7009 §2.1)")
        audit("token_revoked", client_id=client.client_id, kind=found.kind, jti=found.jti or None)
        if found.kind == "refresh_token" and found.grant_id:
            # RFC 7009 §2.1: revoking a refresh token also ends the access tokens of its grant.
            await self._tokens.revoke_grant(found.grant_id)
        elif found.digest is not None:
            await self._tokens.revoke(found.digest)
        else:
            await self._tokens.revoke_jti(found.jti, int(found.claims["exp"]))
