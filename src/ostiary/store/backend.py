"""One storage backend as a whole: every store Protocol the server uses, and the database's lifecycle.

A backend (``ostiary.store.sql.backend.open_sql``, ``ostiary.store.memory.open_memory``) builds one
``Stores``; the composition root (``ostiary.app.provider``) wires the server from it, and the contract
tests (tests/unit/test_store_contract.py) run every Protocol over every backend through it. A new
Protocol is one field here and one line in each backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from .access import AccessStore
from .changes import ChangeLog
from .email_links import EmailLinkStore, UserEmails
from .federation import IdentityLinkStore
from .grants import CodeStore, InteractionStore
from .identity import ConsentStore, LoginThrottle, SessionStore, UserStore
from .mfa import MfaStore
from .passkeys import ChallengeStore, PasskeyStore
from .protocols import Client, ClientStore, KeyStore, ReplayCache, StateStore, TokenStore

__all__ = ["ClientUpgrade", "Database", "Stores"]

# Re-checks one stored client against today's policy: (the client to store, what was removed).
ClientUpgrade = Callable[[Client], tuple[Client, tuple[str, ...]]]


class Database(Protocol):
    """What starting, checking and stopping a node needs of the database, whatever it is."""

    name: str  # "sqlite", "postgresql" or "memory": for messages and for features that need SQL

    def startup_lock(self) -> AbstractAsyncContextManager[None]:
        """Held while one node does first-start work (nodes starting together take turns)."""

    async def migrate(self, client_upgrade: ClientUpgrade | None) -> Sequence[str]:
        """Bring the schema to the current version; returns the upgrade report's lines."""

    async def ping(self) -> bool:
        """True if the database answers (the health check)."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Stores:
    """Every store of one backend, typed by its Protocol; they share one database."""

    database: Database
    clients: ClientStore
    keys: KeyStore
    tokens: TokenStore
    replay: ReplayCache
    state: StateStore
    codes: CodeStore
    interactions: InteractionStore
    users: UserStore
    sessions: SessionStore
    consents: ConsentStore
    throttle: LoginThrottle
    access: AccessStore
    changes: ChangeLog
    passkeys: PasskeyStore
    passkey_challenges: ChallengeStore
    mfa: MfaStore  # TOTP secrets and recovery codes
    email_links: EmailLinkStore  # password-reset and email-verification links
    user_emails: UserEmails
    identity_links: IdentityLinkStore  # federation: upstream identities linked to users
