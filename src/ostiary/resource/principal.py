"""The verified caller, as handed to request handlers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Principal", "parse_scope"]


def parse_scope(value: object) -> frozenset[str]:
    """Scopes from a ``scope`` claim: a space-separated string (RFC 9068 §2.2.3) or a list of strings."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(s for s in value if isinstance(s, str))
    return frozenset()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's subject and client, its scopes, its claims and the token itself.

    ``permissions`` is what the configured PermissionPolicy made of the token (by default: its scopes).
    The token is left out of ``repr`` so that a logged principal never leaks a usable credential.
    """

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(hash=False, compare=False)
    token: str = field(repr=False, compare=False)
    expires_at: float | None = None
    permissions: frozenset[str] = frozenset()

    def has_scopes(self, *needed: str) -> bool:
        return all(s in self.scopes for s in needed)
