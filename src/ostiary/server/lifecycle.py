"""Ending a user's access: `ostiary user disable` and `delete` (sessions, grants, tokens, every node)."""

from __future__ import annotations

import time
from typing import Protocol

from ..store.changes import ChangeLog
from ..store.identity import SessionStore
from .audit import audit

__all__ = ["KEEP_REVOKED", "end_user_access"]

# How long a node keeps refusing a revoked user's tokens by their `iat`: longer than any access
# token lives. Stored grants are also revoked in the database, which is what refresh checks.
KEEP_REVOKED = 7 * 86400


class UserGrants(Protocol):
    async def grant_ids_for(self, client_id: str | None, user_id: str) -> set[str]: ...
    async def revoke_grant(self, grant_id: str) -> int: ...


async def end_user_access(user_id: str, reason: str, *, sessions: SessionStore, tokens: UserGrants,
                          changes: ChangeLog) -> int:
    """End every session, grant and token of `user_id`; returns how many grants were revoked.

    The revoked-user record goes first and bumps the change signal, so every node refuses the
    user's tokens within one poll interval (server.changes) even while the grants are revoked.
    """
    now = int(time.time())
    await changes.revoke_subject(user_id, now, now + KEEP_REVOKED)
    ended = await sessions.delete_for_user(user_id)
    grants = await tokens.grant_ids_for(None, user_id)
    for grant_id in grants:
        await tokens.revoke_grant(grant_id)
    audit("user_access_ended", sub=user_id, reason=reason, sessions_ended=ended, grants_revoked=len(grants))
    return len(grants)
