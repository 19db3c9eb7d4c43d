"""authorization_code (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6) and replay revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import replace
from typing import Any, ClassVar, NoReturn

from ...errors import InvalidGrant, InvalidRequest
from ...store import Client, TokenStore
from ...store.grants import AuthorizationCode, CodeStore
from ..audit import audit
from ..credentials import digest
from ..requests import EndpointRequest
from ..user_tokens import GrantFacts, UserTokenService

__all__ = ["AuthorizationCodeGrant", "s256"]

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class AuthorizationCodeGrant:
    grant_type: ClassVar[str] = "authorization_code"
    public_clients: ClassVar[bool] = True

    def __init__(self, codes: CodeStore, tokens: TokenStore, service: UserTokenService) -> None:
        self._codes = codes
        self._tokens = tokens
        self._service = service

    async def handle(self, request: EndpointRequest, client: Client) -> dict[str, Any]:
        code = request.get("code")
        if not code:
            raise InvalidRequest("code is missing")
        code_digest = digest(code)
        now = int(time.time())
        record = await self._codes.find(code_digest)
        if record is not None and record.consumed_at is not None:
            await self._replayed(record, client)
        if record is None or record.expires_at <= now:
            raise InvalidGrant("the authorization code is invalid or has expired")
        # Everything is checked before the code is consumed: a request that fails a check (no
        # verifier, another client, another redirect_uri) cannot burn the code of the real client.
        if record.client_id != client.client_id:
            raise InvalidGrant("the authorization code was issued to another client")
        data = record.data
        redirect_uri = request.get("redirect_uri")
        if (data["redirect_uri_given"] or redirect_uri is not None) and redirect_uri != data["redirect_uri"]:
            raise InvalidGrant("redirect_uri does not match the authorization request (RFC 6749 §4.1.3)")
        self._check_pkce(data.get("code_challenge"), request.get("code_verifier"))
        resources = request.repeated.get("resource", ())
        self._service.check_resources(client, resources)
        if await self._codes.consume(code_digest, now) is None:
            # Lost a race to another redemption (or expired this instant): a replay all the same.
            again = await self._codes.find(code_digest)
            if again is not None and again.consumed_at is not None:
                await self._replayed(again, client)
            raise InvalidGrant("the authorization code is invalid or has expired")
        facts = GrantFacts.from_dict(data["facts"])
        # The grant covers what this redemption is for; later refreshes stay within it (RFC 8707 §2.2).
        facts = replace(facts, audience=self._service.grant_audience(client, facts, resources))
        return await self._service.respond(client, facts, nonce=data.get("nonce"), resources=resources)

    async def _replayed(self, used: AuthorizationCode, client: Client) -> NoReturn:
        # RFC 6749 §4.1.2: a code used twice revokes every token issued from it, also those the
        # first redemption is issuing right now (the grant mark; see UserTokenService.respond).
        revoked = await self._tokens.revoke_grant(used.grant_id)
        audit("authorization_code_replayed", client_id=client.client_id, grant_id=used.grant_id,
              tokens_revoked=revoked)
        raise InvalidGrant("the authorization code has already been used; its tokens are revoked")

    @staticmethod
    def _check_pkce(challenge: str | None, verifier: str | None) -> None:
        if challenge is None:
            if verifier is not None:  # RFC 9700 §4.8.2: a verifier without a challenge is a downgrade
                raise InvalidGrant("code_verifier given but the authorization request had no code_challenge")
            return
        if verifier is None:
            raise InvalidGrant("code_verifier is required (RFC 7636 §4.5)")
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(s256(verifier), challenge):
            raise InvalidGrant("code_verifier does not match the code_challenge (RFC 7636 §4.6)")
