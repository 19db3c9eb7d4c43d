"""What the protocol core needs from storage: one small Protocol per aggregate, with contracts.

Every implementation (SQL on SQLite and PostgreSQL, memory, Redis for ephemeral state) passes the
same contract tests in tests/unit/store/; a backend bundles its stores in ``backend.Stores``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

from ..keys import KeyStatus, SigningKey

__all__ = [
    "Client",
    "ClientExists",
    "ClientStore",
    "KeyStore",
    "ReplayCache",
    "StateStore",
    "TokenRecord",
    "TokenStore",
    "TrustLevel",
]

# Who registered a client (docs/security.md "Client trust levels"): an operator ("admin"), a holder
# of the initial access token ("registrant"), anybody ("open"), the developer portal ("portal").
TrustLevel = Literal["admin", "registrant", "open", "portal"]


class ClientExists(Exception):
    """A client with that client_id is already registered."""


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client (RFC 7591 §2 metadata plus what the server keeps about it)."""

    client_id: str
    client_name: str = ""
    token_endpoint_auth_method: str = "client_secret_basic"
    token_endpoint_auth_signing_alg: str | None = None
    grant_types: tuple[str, ...] = ("client_credentials",)
    response_types: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    # Scopes the client may be granted, space-separated (RFC 7591 §2 `scope`).
    scope: str = ""
    # Resource indicators (RFC 8707) the client may ask for; the first is the default `aud`.
    audiences: tuple[str, ...] = ()
    access_token_format: str | None = None  # None: the server default
    access_token_lifetime: int | None = None  # cap below the server's lifetime; None: no cap
    jwks: Mapping[str, Any] | None = None
    jwks_uri: str | None = None
    # Other RFC 7591 / OIDC metadata, kept and returned as registered (client_uri, contacts, ...).
    extra: Mapping[str, Any] = field(default_factory=dict)
    secret_digest: str | None = None  # hex SHA-256 of the client secret
    sealed_secret: str | None = None  # recoverable secret, only for client_secret_jwt
    registration_token_digest: str | None = None  # RFC 7592 registration access token
    sealed_registration_token: str | None = None  # returned again on RFC 7592 reads (§3 requires it)
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = field(default_factory=lambda: int(time.time()))
    # Set only by an administrator (ostiary.server.policy.clients.ADMIN_ONLY):
    trust_level: TrustLevel = "admin"
    skip_consent: bool = False  # no consent page for this client (first-party apps)
    resource_server: bool = False  # may introspect access tokens whose aud is one of `audiences`
    # SMART Backend Services: system/ scopes with a client secret instead of a key (RFC 7523).
    system_scopes_with_secret: bool = False

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def to_record(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("grant_types", "response_types", "redirect_uris", "post_logout_redirect_uris", "audiences"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Client:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for name in ("grant_types", "response_types", "redirect_uris", "post_logout_redirect_uris", "audiences"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        if "trust_level" not in kwargs and kwargs.get("registration_token_digest"):
            # A record from before trust levels that came through /register is never admin-trusted.
            kwargs["trust_level"] = "registrant"
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token: opaque access tokens (and, later, refresh tokens), found by digest."""

    digest: str  # SHA-256 hex of the token value; the value itself is never stored
    kind: str  # "access_token" | "refresh_token"
    client_id: str
    jti: str
    claims: Mapping[str, Any]
    expires_at: int
    revoked: bool = False
    grant_id: str | None = None  # the authorization this token came from (user grants only)
    consumed_at: int | None = None  # refresh tokens: when it was rotated
    successor: str | None = None  # refresh tokens, rotation grace period: the sealed successor response


class ClientStore(Protocol):
    async def get(self, client_id: str) -> Client | None:
        """The client, or None if unknown."""

    async def list(self) -> Sequence[Client]:
        """All clients, ordered by client_id."""

    async def create(self, client: Client) -> None:
        """Store a new client; raises ClientExists if the client_id is taken."""

    async def update(self, client: Client) -> bool:
        """Replace a client's record; False if it does not exist."""

    async def delete(self, client_id: str) -> bool:
        """Remove a client and the tokens issued to it; False if it did not exist."""


class KeyStore(Protocol):
    async def list(self) -> Sequence[SigningKey]:
        """All keys (active, next and retired), oldest first."""

    async def add(self, key: SigningKey) -> bool:
        """Store a key; False (and nothing changed) if a key with that kid exists."""

    async def set_status(self, kid: str, status: KeyStatus, publish_until: int | None = None) -> bool:
        """Change a key's status; False if no such key."""

    async def delete(self, kid: str) -> bool:
        """Remove a key for good; False if no such key."""


class TokenStore(Protocol):
    async def save(self, record: TokenRecord) -> None:
        """Store a token record (the digest is unique)."""

    async def find(self, digest: str) -> TokenRecord | None:
        """The record for a token digest, revoked or not; None if unknown."""

    async def revoke(self, digest: str) -> bool:
        """Mark a stored token revoked; False if unknown."""

    async def revoke_jti(self, jti: str, expires_at: int) -> None:
        """Remember that a self-contained token with this jti is revoked until it expires."""

    async def is_jti_revoked(self, jti: str) -> bool:
        """True if revoke_jti was called for this jti (kept until purge_expired removes it)."""

    async def purge_expired(self, now: int) -> int:
        """Delete records that expired before `now`; returns how many."""

    async def consume(self, digest: str, now: int) -> TokenRecord | None:
        """Atomically mark a live, unrevoked, unconsumed token of an unrevoked grant consumed, in one
        conditional statement; None if it was not (rotation: exactly one of racing callers wins)."""

    async def revoke_grant(self, grant_id: str) -> int:
        """Mark the grant revoked, then revoke every token of it, stored or self-contained; returns
        how many were newly revoked. Idempotent, also when called many times at once."""

    async def set_successor(self, digest: str, sealed: str) -> bool:
        """Keep the (sealed) response that replaced a rotated refresh token; False if unknown."""

    async def is_grant_revoked(self, grant_id: str) -> bool:
        """True once revoke_grant was called for the grant; checked after a token of it is saved."""

    async def grant_ids_for(self, client_id: str | None, user_id: str) -> set[str]:
        """The grants of `user_id` (the `sub` or `user_id` claim of a stored token) with one client,
        or with every client (None): to end them when consent is withdrawn or the user is removed."""


class ReplayCache(Protocol):
    async def first_use(self, key: str, expires_at: int) -> bool:
        """Atomically record `key` until `expires_at`; False if it was already recorded (a replay)."""


class StateStore(Protocol):
    async def get_or_create(self, name: str, value: str) -> str:
        """The stored value for `name`, storing `value` first if there is none (atomic)."""
