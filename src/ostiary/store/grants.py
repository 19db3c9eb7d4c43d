"""Authorization codes and pending interactions (the login/consent steps of an authorization request)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["AuthorizationCode", "CodeStore", "InteractionStore"]


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    digest: str
    client_id: str
    grant_id: str
    data: Mapping[str, Any]  # user, redirect_uri, scope, nonce, code_challenge, auth_time, sid, ...
    expires_at: int
    consumed_at: int | None = None


class CodeStore(Protocol):
    async def save(self, code: AuthorizationCode) -> None: ...
    async def consume(self, digest: str, now: int) -> AuthorizationCode | None:
        """Atomically mark a live code used; None if unknown, expired or already used (RFC 6749 §4.1.2)."""
    async def find(self, digest: str) -> AuthorizationCode | None:
        """The code whatever its state (to tell a replay from garbage)."""


class InteractionStore(Protocol):
    async def save(self, interaction_id: str, data: Mapping[str, Any], expires_at: int) -> None: ...
    async def get(self, interaction_id: str, now: int) -> Mapping[str, Any] | None: ...
    async def update(self, interaction_id: str, data: Mapping[str, Any]) -> bool: ...
    async def delete(self, interaction_id: str) -> None: ...
    async def take(self, interaction_id: str, now: int) -> Mapping[str, Any] | None:
        """Atomically remove a live entry and return it; None if unknown, expired or already taken
        (single-use values such as launch values: exactly one of racing callers gets it)."""
