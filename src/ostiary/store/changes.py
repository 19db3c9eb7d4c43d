"""The change signal: what a node needs to notice, within a second, that something changed elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["ChangeLog"]


class ChangeLog(Protocol):
    """A version number bumped by every management change, and the users whose tokens were ended.

    Contract: `version` is one cheap read; `bump` and `revoke_subject` increase it by at least one
    in the same transaction as what they record, so a node that sees the new version sees the change.
    """

    async def version(self) -> int: ...

    async def bump(self) -> int:
        """Increase the version; returns the new one."""
        ...

    async def revoke_subject(self, user_id: str, revoked_at: int, keep_until: int) -> None:
        """Record that every token of `user_id` issued at or before `revoked_at` is dead; bumps the version."""
        ...

    async def revoked_subjects(self, now: int) -> Mapping[str, int]:
        """user id -> revoked_at for records still kept at `now` (a read: older ones are deleted by
        the next `revoke_subject`)."""
        ...
