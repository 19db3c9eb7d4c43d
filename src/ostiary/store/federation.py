"""Linked identities: which upstream account (provider, subject) signs in as which local user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["IdentityLinkStore", "LinkExists", "LinkedIdentity"]


class LinkExists(Exception):
    """That upstream identity is already linked (to this or another user)."""


@dataclass(frozen=True, slots=True)
class LinkedIdentity:
    provider: str  # the `id` of the [[federation]] table
    subject: str  # the upstream `sub` (unique per upstream issuer, OIDC Core §2)
    user_id: str
    created_at: int
    last_used: int
    label: str = ""  # what the account page shows (an upstream email or name; never used to match)


class IdentityLinkStore(Protocol):
    async def find(self, provider: str, subject: str) -> LinkedIdentity | None:
        """The link of this upstream identity, or None."""
    async def add(self, link: LinkedIdentity) -> None:
        """Raises LinkExists if (provider, subject) is linked already: one upstream identity, one user."""
    async def for_user(self, user_id: str) -> Sequence[LinkedIdentity]:
        """The user's links, oldest first."""
    async def touch(self, provider: str, subject: str, now: int) -> None:
        """Record a sign-in through this link."""
    async def remove(self, user_id: str, provider: str, subject: str, *, keep_last: bool = False) -> bool:
        """Remove one of the user's links; False if the user has no such link (never another user's) or,
        with `keep_last`, if it is the user's only link (checked and removed atomically: racing removals
        of two links leave one)."""
