"""Dynamic client registration (RFC 7591) and client configuration (RFC 7592)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import InvalidClientMetadata, InvalidToken, RegistrationNotSupported, RegistrationThrottled
from ...store import Client, ClientStore, TrustLevel
from ...store.identity import LoginThrottle, ThrottleRule
from ..audit import audit
from ..credentials import matches
from ..registration import ClientRegistry, describe

__all__ = ["RegistrationEndpoint"]

# RFC 7592 §2.2: the server ignores these in an update request.
_SERVER_FIELDS = ("registration_access_token", "registration_client_uri", "client_secret_expires_at",
                  "client_id_issued_at", "client_id", "client_secret")


def bearer(authorization: str | None) -> str | None:
    if not authorization or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip() or None


class RegistrationEndpoint:
    def __init__(self, registry: ClientRegistry, store: ClientStore, *, initial_tokens: Sequence[str],
                 open_registration: bool, endpoint_url: str, unseal: Callable[[str], str | None],
                 throttle: tuple[LoginThrottle, ThrottleRule] | None = None) -> None:
        self._registry = registry
        self._store = store
        self._initial = tuple(t for t in initial_tokens if t)
        self._open = open_registration
        self._url = endpoint_url
        self._unseal = unseal
        self._throttle = throttle  # anonymous registrations per address (docs/security.md)

    @property
    def enabled(self) -> bool:
        return self._open or bool(self._initial)

    def _response(self, client: Client, secret: str | None, rat: str | None) -> dict[str, Any]:
        body = describe(client)
        if secret:
            body["client_secret"] = secret
        if rat is None and client.sealed_registration_token:
            rat = self._unseal(client.sealed_registration_token)
        if rat:
            body["registration_access_token"] = rat
            body["registration_client_uri"] = f"{self._url}/{client.client_id}"
        return body

    async def register(self, authorization: str | None, metadata: Any, address: str = "") -> dict[str, Any]:
        """RFC 7591 §3: 201 body; raises InvalidToken without a valid initial access token and
        RegistrationThrottled when `address` registered anonymously too often."""
        if not self.enabled:
            raise RegistrationNotSupported("dynamic registration is disabled")
        level = self._trust_level(bearer(authorization))
        if level == "open" and self._throttle is not None:  # one party, endless clients (and launcher entries)
            counters, rule = self._throttle
            wait = await counters.attempt("register:" + address, rule, int(time.time()))
            if wait:
                audit("registration_throttled", address=address, retry_after=wait)
                raise RegistrationThrottled(wait)
        if not isinstance(metadata, dict):
            raise InvalidClientMetadata("client metadata must be a JSON object")
        client, issued = await self._registry.create(metadata, registration_token=True, level=level)
        return self._response(client, issued.client_secret, issued.registration_access_token)

    def _trust_level(self, presented: str | None) -> TrustLevel:
        """Registrant with a valid initial access token; open without one if allowed; else InvalidToken."""
        if presented is not None and any(hmac.compare_digest(presented.encode(), t.encode()) for t in self._initial):
            return "registrant"
        if presented is None and self._open:
            return "open"
        raise InvalidToken("a valid initial access token is required")

    async def _authorized(self, client_id: str, authorization: str | None) -> Client:
        token = bearer(authorization)
        client = await self._store.get(client_id)
        # RFC 7592 §2: unknown client and wrong token look the same (401), to not reveal ids.
        if token is None or client is None or not matches(token, client.registration_token_digest):
            raise InvalidToken("the registration access token is not valid for this client")
        return client

    async def read(self, client_id: str, authorization: str | None) -> dict[str, Any]:
        client = await self._authorized(client_id, authorization)
        return self._response(client, None, None)

    async def update(self, client_id: str, authorization: str | None, metadata: Any) -> dict[str, Any]:
        client = await self._authorized(client_id, authorization)
        if not isinstance(metadata, dict):
            raise InvalidClientMetadata("client metadata must be a JSON object")
        if metadata.get("client_id") != client_id:
            raise InvalidClientMetadata("client_id must be given and match (RFC 7592 §2.2)")
        if "client_secret" in metadata and not matches(str(metadata["client_secret"]), client.secret_digest):
            raise InvalidClientMetadata("client_secret does not match (RFC 7592 §2.2)")
        clean = {k: v for k, v in metadata.items() if k not in _SERVER_FIELDS}
        changed, issued = await self._registry.update(client_id, clean, level=client.trust_level, by_client=True)
        return self._response(changed, issued.client_secret, None)

    async def delete(self, client_id: str, authorization: str | None) -> None:
        await self._authorized(client_id, authorization)
        await self._registry.delete(client_id)
