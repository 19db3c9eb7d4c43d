"""The in-memory backend (``database_url = "memory:"``): every store Protocol, for tests and demos.

Everything is lost when the process stops, and nothing is shared with another process: one node
only, never production (docs/configuration.md). It keeps the contracts of the SQL stores, checked
by the same contract tests (tests/unit/test_store_contract.py), single-use rules included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from ..backend import ClientUpgrade, Stores
from .access import MemoryAccessStore, MemoryChangeLog
from .clients import MemoryClientStore, MemoryKeyStore, MemoryReplayCache, MemoryStateStore
from .data import MemoryData
from .email_links import MemoryEmailLinkStore, MemoryUserEmails
from .federation import MemoryIdentityLinkStore
from .grants import MemoryCodeStore, MemoryInteractionStore
from .identity import MemoryConsentStore, MemoryLoginThrottle, MemorySessionStore, MemoryUserStore
from .mfa import MemoryMfaStore
from .passkeys import MemoryChallengeStore, MemoryPasskeyStore
from .tokens import MemoryTokenStore

__all__ = ["MEMORY_URL", "MemoryData", "MemoryDatabase", "open_memory"]

MEMORY_URL = "memory:"


class MemoryDatabase:
    name = "memory"

    def __init__(self) -> None:
        self._first_start = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        async with self._first_start:
            yield

    async def migrate(self, client_upgrade: ClientUpgrade | None) -> Sequence[str]:
        return ()  # nothing was stored before this process started

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


def open_memory(data: MemoryData | None = None) -> Stores:
    """Every store over one set of in-memory tables (a fresh one unless `data` is given)."""
    d = data if data is not None else MemoryData()
    return Stores(
        database=MemoryDatabase(), clients=MemoryClientStore(d), keys=MemoryKeyStore(d), tokens=MemoryTokenStore(d),
        replay=MemoryReplayCache(d), state=MemoryStateStore(d), codes=MemoryCodeStore(d),
        interactions=MemoryInteractionStore(d), users=MemoryUserStore(d), sessions=MemorySessionStore(d),
        consents=MemoryConsentStore(d), throttle=MemoryLoginThrottle(d), access=MemoryAccessStore(d),
        changes=MemoryChangeLog(d), passkeys=MemoryPasskeyStore(d), passkey_challenges=MemoryChallengeStore(d),
        mfa=MemoryMfaStore(d), email_links=MemoryEmailLinkStore(d), user_emails=MemoryUserEmails(d),
        identity_links=MemoryIdentityLinkStore(d),
    )
