"""refresh_token (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2)."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from ...errors import InvalidGrant, InvalidRequest, InvalidScope
from ...store import Client, TokenStore
from ...store.identity import SessionStore
from ..audit import audit
from ..credentials import digest
from ..policy.clients import ClientRules
from ..policy.grants import check_refresh_resources
from ..requests import EndpointRequest
from ..scopes import parse_scope
from ..user_tokens import GrantFacts, UserTokenService
from .rotation import RotationGrace

__all__ = ["RefreshTokenGrant"]


class RefreshTokenGrant:
    grant_type: ClassVar[str] = "refresh_token"
    public_clients: ClassVar[bool] = True

    def __init__(self, tokens: TokenStore, service: UserTokenService, rotation: Literal["always", "public"],
                 sessions: SessionStore, rules: ClientRules, grace: RotationGrace | None = None) -> None:
        self._grace = grace
        self._sessions = sessions
        self._rules = rules
        self._tokens = tokens
        self._service = service
        self._rotation = rotation

    async def handle(self, request: EndpointRequest, client: Client) -> dict[str, Any]:
        value = request.get("refresh_token")
        if not value:
            raise InvalidRequest("refresh_token is missing")
        now = int(time.time())
        token_digest = digest(value)
        record = await self._tokens.find(token_digest)
        if record is None or record.kind != "refresh_token" or record.client_id != client.client_id:
            raise InvalidGrant("the refresh token is invalid")
        facts = GrantFacts.from_dict(record.claims)
        grant_id = record.grant_id or facts.grant_id
        if record.revoked or record.expires_at <= now or await self._tokens.is_grant_revoked(grant_id):
            raise InvalidGrant("the refresh token is revoked or has expired")
        if "online_access" in facts.scope and "offline_access" not in facts.scope and not (
            facts.sid and await self._sessions.alive(facts.sid, now)
        ):  # SMART permission-online: usable only while the user's session lasts
            raise InvalidGrant("online access ended with the user's session")
        # Checked before the token is consumed: a bad request must not burn a good token.
        requested = parse_scope(request.get("scope"))
        if set(requested) - set(facts.scope):
            raise InvalidScope("a refresh may narrow the scope, never widen it (RFC 6749 §6)")
        resources = request.repeated.get("resource", ())
        self._service.check_resources(client, resources)
        check_refresh_resources(client, self._service.grant_audience(client, facts), resources)
        rotate = self._rotation == "always" or client.is_public
        if rotate and (record.consumed_at is not None or await self._tokens.consume(token_digest, now) is None):
            again = await self._grace.successor(token_digest, now) if self._grace else None
            if again is not None:  # within the rotation grace period: the same successor, no fork
                audit("refresh_token_grace", client_id=client.client_id, grant_id=grant_id)
                return again
            # Used before (or by a racing request): stolen or replayed. Revoke the whole family,
            # including what the first use is being issued right now (RFC 9700 §4.14.2).
            revoked = await self._tokens.revoke_grant(grant_id)
            audit("refresh_token_reused", client_id=client.client_id, grant_id=grant_id, tokens_revoked=revoked)
            raise InvalidGrant("the refresh token was already used; the grant has been revoked")
        # Policy applies to old grants too: what the client may no longer hold is dropped (docs/security.md).
        granted = self._rules.still_held(client, requested or facts.scope, self.grant_type)
        response = await self._service.respond(
            client, facts, granted=granted, resources=resources, new_refresh_token=rotate,
        )
        if rotate and self._grace:
            await self._grace.remember(token_digest, response)
        return response
