"""Links mailed to users (password reset, email verification): stored only as digests, used once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .identity import User

__all__ = ["EmailLink", "EmailLinkStore", "LinkPurpose", "UserEmails"]

LinkPurpose = Literal["reset", "verify"]


@dataclass(frozen=True, slots=True)
class EmailLink:
    digest: str  # SHA-256 of the secret in the mailed URL; the secret itself is never stored
    purpose: LinkPurpose
    user_id: str
    email: str  # the address the link was mailed to: it is valid only while the user still has it
    expires_at: int


class EmailLinkStore(Protocol):
    async def add(self, link: EmailLink) -> None: ...
    async def peek(self, digest: str, purpose: LinkPurpose, now: int) -> EmailLink | None:
        """The unused, unexpired link (nothing changes: showing a form does not use it)."""
    async def take(self, digest: str, purpose: LinkPurpose, now: int) -> EmailLink | None:
        """Use the link in one atomic statement: of N racing callers exactly one gets it, the
        others (and any caller after it expired) get None."""
    async def delete_for_user(self, user_id: str, purpose: LinkPurpose) -> int:
        """Forget every unused link of this purpose for the user (after a reset)."""
    async def purge_expired(self, now: int) -> int: ...


class UserEmails(Protocol):
    async def users_with_email(self, address: str, limit: int) -> Sequence[User]:
        """Users whose `email` claim is `address` (compared case-insensitively), at most `limit`."""
