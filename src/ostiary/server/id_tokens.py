"""ID tokens (OIDC Core §2, §3.1.3.6) and logout tokens (Back-Channel Logout 1.0 §2.4)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from typing import Any

from .. import jwt
from ..config import Settings
from ..errors import UnauthorizedClient
from ..store import Client
from .credentials import new_token
from .keyring import KeyRing
from .subjects import SubjectMapper

__all__ = ["IdTokenIssuer", "id_token_algs", "token_hash"]

_HASH_FOR_ALG = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
DEFAULT_ID_TOKEN_ALG = "RS256"  # OIDC Core §3.1.3.7: the default when the client registered none
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def id_token_algs(settings: Settings) -> tuple[str, ...]:
    """The ID token algs this server signs with: a key is generated for each on start, discovery
    advertises them, and a client may register only these (any other would fail at every sign-in)."""
    return tuple(sorted({*settings.keys.generate, settings.tokens.signing_alg, DEFAULT_ID_TOKEN_ALG}))


def token_hash(value: str, alg: str) -> str:
    """at_hash / c_hash: left half of the hash the JWS alg uses (OIDC Core §3.1.3.6); SHA-512 for Ed25519."""
    hasher = hashlib.sha512 if alg == "EdDSA" else _HASH_FOR_ALG[alg[-3:]]
    digest = hasher(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


class IdTokenIssuer:
    def __init__(self, issuer: str, keyring: KeyRing, lifetime: int, subjects: SubjectMapper | None = None) -> None:
        self.issuer = issuer
        self._keyring = keyring
        self._lifetime = lifetime
        self._subjects = subjects  # `sub` arguments are internal user ids; the client sees its own (OIDC Core §8)

    async def subject_for(self, client: Client, user_id: str) -> str:
        """The `sub` this client sees for the user (public or pairwise)."""
        return await self._subjects.subject(client, user_id) if self._subjects is not None else user_id

    def alg_for(self, client: Client) -> str:
        return str(client.extra.get("id_token_signed_response_alg") or DEFAULT_ID_TOKEN_ALG)

    async def issue(self, client: Client, *, sub: str, auth_time: int, nonce: str | None, sid: str | None,
                    acr: str | None, amr: tuple[str, ...], access_token: str | None,
                    claims: Mapping[str, Any]) -> str:
        alg = self.alg_for(client)
        now = int(time.time())
        body: dict[str, Any] = dict(claims)
        body.update({"iss": self.issuer, "sub": await self.subject_for(client, sub), "aud": client.client_id,
                     "exp": now + self._lifetime, "iat": now, "auth_time": auth_time, "azp": client.client_id})
        if nonce is not None:
            body["nonce"] = nonce
        if sid:
            body["sid"] = sid
        if acr:
            body["acr"] = acr
        if amr:
            body["amr"] = list(amr)
        if access_token is not None:
            body["at_hash"] = token_hash(access_token, alg)
        try:
            key = await self._keyring.signing_key(alg)
        except LookupError:  # registered before algs were checked, or the operator dropped the alg
            raise UnauthorizedClient(f"the server has no key for this client's id_token_signed_response_alg {alg}; "
                                     "update the registration to one discovery lists") from None
        return jwt.sign(body, key, typ="JWT")

    async def logout_token(self, client: Client, *, sub: str, sid: str) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": client.client_id, "iat": now, "exp": now + 120, "jti": new_token(16),
                "sub": await self.subject_for(client, sub), "sid": sid, "events": {BACKCHANNEL_EVENT: {}}}
        key = await self._keyring.signing_key(self.alg_for(client))
        return jwt.sign(body, key, typ="logout+jwt")
