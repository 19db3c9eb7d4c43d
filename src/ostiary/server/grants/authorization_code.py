"""authorization_code (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6) and replay revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any, ClassVar

from ...errors import InvalidGrant, InvalidRequest
from ...store import Client, TokenStore
from ...store.grants import CodeStore
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
        record = await self._codes.consume(code_digest, int(time.time()))
        if record is None:
            used = await self._codes.find(code_digest)
            if used is not None and used.consumed_at is not None:
                # RFC 6749 §4.1.2: a code used twice revokes every token issued from it.
                revoked = await self._tokens.revoke_grant(used.grant_id)
                audit("authorization_code_replayed", client_id=client.client_id, grant_id=used.grant_id,
                      tokens_revoked=revoked)
                raise InvalidGrant("the authorization code has already been used; its tokens are revoked")
            raise InvalidGrant("the authorization code is invalid or has expired")
        if record.client_id != client.client_id:
            raise InvalidGrant("the authorization code was issued to another client")
        data = record.data
        redirect_uri = request.get("redirect_uri")
        if (data["redirect_uri_given"] or redirect_uri is not None) and redirect_uri != data["redirect_uri"]:
            raise InvalidGrant("redirect_uri does not match the authorization request (RFC 6749 §4.1.3)")
        self._check_pkce(data.get("code_challenge"), request.get("code_verifier"))
        facts = GrantFacts.from_dict(data["facts"])
        return await self._service.respond(
            client, facts, nonce=data.get("nonce"), resources=request.repeated.get("resource", ()),
        )

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
