"""Passkeys (W3C WebAuthn Level 2): the credentials users registered, and the single-use challenges of
the ceremonies under way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["CeremonyChallenge", "ChallengeStore", "PasskeyCredential", "PasskeyStore", "Purpose"]

# register: on the account page (bound to the session); passwordless: on the login page (bound to the
# interaction); second_factor: on the second-factor page (bound to the interaction and the user).
Purpose = Literal["register", "passwordless", "second_factor"]


@dataclass(frozen=True, slots=True)
class PasskeyCredential:
    """A public-key credential (WebAuthn §4 "Credential Record") of one user."""

    credential_id: str  # base64url of the credential id chosen by the authenticator
    user_id: str
    user_handle: str  # base64url of the WebAuthn user.id given at registration (never the username)
    public_key: bytes  # COSE_Key
    sign_count: int
    transports: tuple[str, ...]
    backup_eligible: bool  # BE flag at registration: a synced passkey, so not hardware-bound (fixed for life)
    backed_up: bool  # BS flag, as last seen
    name: str
    created_at: int
    last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class CeremonyChallenge:
    """A challenge handed to the browser; kept under the SHA-256 digest of its value."""

    digest: str
    purpose: Purpose
    binding: str  # the interaction id (sign-in) or the session's sid (registration)
    user_id: str | None  # None for a passwordless sign-in (the credential names the user)
    user_handle: str | None  # registration: the user.id the options named
    expires_at: int


class PasskeyStore(Protocol):
    async def add(self, credential: PasskeyCredential) -> bool:
        """Store a new credential; False if that credential id is already registered (to anyone)."""
    async def get(self, credential_id: str) -> PasskeyCredential | None: ...
    async def list_for_user(self, user_id: str) -> Sequence[PasskeyCredential]:
        """The user's credentials, oldest first."""
    async def record_use(self, credential_id: str, sign_count: int, backed_up: bool, now: int) -> bool:
        """Store the counter of a verified assertion in one conditional statement: False when the stored
        counter is not below `sign_count` (a regression, or a racing use) unless both are 0 (no counter)."""
    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        """Rename one of the user's credentials; False if the user has no such credential."""
    async def remove(self, user_id: str, credential_id: str) -> bool:
        """Remove one of the user's credentials; False if the user has no such credential."""


class ChallengeStore(Protocol):
    async def put(self, challenge: CeremonyChallenge, now: int) -> None:
        """Keep a challenge until it is taken or expires (expired ones are swept on the way)."""
    async def take(self, digest: str, now: int) -> CeremonyChallenge | None:
        """Remove and return the live challenge, in one statement: of racing takers exactly one gets it."""
