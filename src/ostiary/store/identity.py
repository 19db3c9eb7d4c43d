"""Users, SSO sessions, consents and login throttling: what the OpenID Connect provider keeps."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ClaimsChange", "ConsentStore", "LoginThrottle", "Session", "SessionStore", "ThrottleRule", "User",
           "UserExists", "UserStore"]


class UserExists(Exception):
    """A user with that username already exists."""


@dataclass(frozen=True, slots=True)
class User:
    id: str  # the `sub`: stable, never reassigned
    username: str
    password_hash: str | None = None
    disabled: bool = False
    # OIDC Core §5.1 standard claims (name, email, email_verified, ...), plus fhirUser later.
    claims: Mapping[str, Any] = field(default_factory=dict)
    created_at: int = field(default_factory=lambda: int(time.time()))
    updated_at: int = field(default_factory=lambda: int(time.time()))


@dataclass(frozen=True, slots=True)
class Session:
    """An SSO session: one browser, one logged-in user."""

    digest: str  # SHA-256 of the cookie value; the value itself is never stored
    sid: str
    user_id: str
    auth_time: int
    expires_at: int
    amr: tuple[str, ...] = ("pwd",)
    acr: str | None = None
    clients: tuple[str, ...] = ()


# The stored claims -> the claims to write, or None to write nothing (UserStore.change_claims).
ClaimsChange = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


class UserStore(Protocol):
    async def get(self, user_id: str) -> User | None: ...
    async def by_username(self, username: str) -> User | None: ...
    async def list(self) -> Sequence[User]: ...
    async def create(self, user: User) -> None:
        """Raises UserExists if the username is taken."""
    async def update(self, user: User) -> bool: ...
    async def change_claims(self, user_id: str, change: ClaimsChange, now: int) -> User | None:
        """Write the claims alone (and `updated_at` = `now`) as `change` makes them from the stored ones, as
        one compare-and-set: nothing written meanwhile is lost, and `change` decides on the claims as they
        are when written (it may run more than once: keep it pure; it returns None to write nothing).
        The updated user, or None (unknown user, or `change` refused)."""
    async def set_password_hash(self, user_id: str, password_hash: str, now: int | None,
                                expected: str | None = None) -> User | None:
        """Write the password hash alone (and `updated_at` = `now` unless None), in one statement; with
        `expected`, only while the stored hash is still that one (a re-hash at sign-in never undoes a new
        password). Nothing else written meanwhile (disabled, claims) is lost. The updated user, or None."""
    async def set_disabled(self, user_id: str, disabled: bool, now: int) -> User | None:
        """Write the disabled mark alone (and `updated_at`), in one statement. The updated user, or None."""
    async def delete(self, user_id: str) -> bool:
        """Remove the user with their sessions and consents; False if unknown."""


class SessionStore(Protocol):
    async def create(self, session: Session) -> None: ...
    async def get(self, digest: str, now: int) -> Session | None:
        """The live session, or None if unknown or expired."""
    async def add_client(self, digest: str, client_id: str) -> None:
        """Remember that `client_id` got tokens in this session (for logout)."""
    async def delete(self, digest: str) -> Session | None:
        """End a session; returns what it was, or None."""
    async def delete_for_user(self, user_id: str, keep: str | None = None) -> int:
        """End every session of `user_id` but the one of digest `keep`; how many ended."""
    async def alive(self, sid: str, now: int) -> bool:
        """True while the session with this public `sid` exists and has not expired."""


class ConsentStore(Protocol):
    async def get(self, user_id: str, client_id: str) -> frozenset[str]:
        """Scopes the user has granted the client (empty if none)."""
    async def grant(self, user_id: str, client_id: str, scopes: frozenset[str]) -> None:
        """Add scopes to what the user has granted the client."""
    async def revoke(self, user_id: str, client_id: str) -> bool: ...
    async def list_for_user(self, user_id: str) -> Mapping[str, frozenset[str]]: ...


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """Progressive delays for one kind of key: `free` attempts, then 2, 4, 8 ... `max_delay` seconds
    between attempts; after `window` seconds without an attempt the key starts afresh."""

    free: int
    max_delay: int
    window: int

    def delay(self, attempt: int) -> int:
        """Seconds the key must wait after its `attempt`-th attempt."""
        if attempt < self.free:
            return 0
        return min(2 << min(attempt - self.free, 30), self.max_delay)  # >= 2: whole seconds round down


class LoginThrottle(Protocol):
    """Atomic attempt counters (login per user and address, client authentication per client and address)."""

    async def attempt(self, key: str, rule: ThrottleRule, now: int) -> int:
        """Admit and count one attempt in one atomic statement: 0 if admitted, else the seconds to
        wait (nothing counted). Of N racing callers at most the free remainder are admitted."""
    async def refund(self, key: str) -> None:
        """Give one admitted attempt back (it turned out legitimate)."""
    async def reset(self, key: str) -> None:
        """Forget the key (a successful login ends its user's delays)."""
