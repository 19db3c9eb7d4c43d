"""Optional refresh-token rotation grace period (docs/security.md, concurrency contract).

Off by default. With `seconds` > 0, a client that presents the refresh token it has just rotated
(a lost response, a retry, two tabs refreshing at once) gets the very response the rotation
produced: the same successor pair, so the family does not fork and no reuse alarm goes off. After
the period, or once the successor has been used, presenting it again is reuse and revokes the
family. The trade-off: within the period a thief holding the old token and the client's
credentials (for a public client: the token alone) also receives the successor, unnoticed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from ...errors import InvalidGrant
from ...store import TokenStore
from ..credentials import digest

__all__ = ["RotationGrace"]

WAIT_FOR_SUCCESSOR = 2.0  # seconds a racing request waits for the rotation it lost to
POLL = 0.05


class RotationGrace:
    def __init__(self, tokens: TokenStore, seconds: int, seal: Callable[[str], str],
                 unseal: Callable[[str], str | None]) -> None:
        self._tokens = tokens
        self._seconds = seconds
        self._seal = seal
        self._unseal = unseal

    async def remember(self, token_digest: str, response: dict[str, Any]) -> None:
        """After a rotation: keep its response (sealed) for presentations within the period."""
        if self._seconds > 0:
            await self._tokens.set_successor(token_digest, self._seal(orjson.dumps(response).decode()))

    async def successor(self, token_digest: str, now: int) -> dict[str, Any] | None:
        """The rotation's response if `token_digest` was rotated within the period and its successor
        is unused; None when reuse must revoke the family. Raises InvalidGrant (without revoking)
        when the racing rotation has not answered within WAIT_FOR_SUCCESSOR."""
        if self._seconds <= 0:
            return None
        deadline = time.monotonic() + WAIT_FOR_SUCCESSOR
        while True:
            record = await self._tokens.find(token_digest)
            if record is None or record.consumed_at is None or now - record.consumed_at > self._seconds:
                return None
            if record.successor is not None:
                return await self._still_unused(record.successor, now - record.consumed_at)
            if time.monotonic() > deadline:
                raise InvalidGrant("the refresh token is being rotated; retry")
            await asyncio.sleep(POLL)

    async def _still_unused(self, sealed: str, elapsed: int) -> dict[str, Any] | None:
        plain = self._unseal(sealed)
        if plain is None:
            return None
        response: dict[str, Any] = orjson.loads(plain)
        if "refresh_token" in response:
            successor = await self._tokens.find(digest(response["refresh_token"]))
            if successor is None or successor.revoked or successor.consumed_at is not None:
                return None  # the successor was used or revoked: this is reuse, not a retry
        response["expires_in"] = max(0, int(response.get("expires_in", 0)) - elapsed)
        return response
