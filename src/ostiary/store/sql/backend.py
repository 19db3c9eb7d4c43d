"""The SQL backend (SQLite, PostgreSQL): every store Protocol over one SQLAlchemy engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..backend import ClientUpgrade, Stores
from .access import SqlAccessStore
from .changes import SqlChangeLog
from .email_links import SqlEmailLinkStore, SqlUserEmails
from .engine import make_engine, startup_lock, upgrade
from .federation import SqlIdentityLinkStore
from .grants import SqlCodeStore, SqlInteractionStore
from .identity import SqlConsentStore, SqlLoginThrottle, SqlSessionStore, SqlUserStore
from .mfa import SqlMfaStore
from .passkeys import SqlChallengeStore, SqlPasskeyStore
from .sealed import Sealing
from .stores import SqlClientStore, SqlKeyStore, SqlReplayCache, SqlStateStore, SqlTokenStore

__all__ = ["SqlDatabase", "open_sql", "sql_stores"]


class SqlDatabase:
    """The engine's lifecycle; `engine` is for what only SQL serves (the FHIR data, rewrapping secrets)."""

    def __init__(self, engine: AsyncEngine, sealer: Sealing) -> None:
        self.engine = engine
        self.name = engine.dialect.name
        self._sealer = sealer

    @asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        async with startup_lock(self.engine):
            yield

    async def migrate(self, client_upgrade: ClientUpgrade | None) -> Sequence[str]:
        return await upgrade(self.engine, client_upgrade=client_upgrade, sealer=self._sealer)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def aclose(self) -> None:
        await self.engine.dispose()


def sql_stores(engine: AsyncEngine, sealer: Sealing) -> Stores:
    """Every store over one engine (already migrated, or migrated later by `database.migrate`)."""
    return Stores(
        database=SqlDatabase(engine, sealer), clients=SqlClientStore(engine), keys=SqlKeyStore(engine, sealer),
        tokens=SqlTokenStore(engine), replay=SqlReplayCache(engine), state=SqlStateStore(engine),
        codes=SqlCodeStore(engine), interactions=SqlInteractionStore(engine), users=SqlUserStore(engine),
        sessions=SqlSessionStore(engine), consents=SqlConsentStore(engine), throttle=SqlLoginThrottle(engine),
        access=SqlAccessStore(engine), changes=SqlChangeLog(engine), passkeys=SqlPasskeyStore(engine),
        passkey_challenges=SqlChallengeStore(engine), mfa=SqlMfaStore(engine, sealer),
        email_links=SqlEmailLinkStore(engine), user_emails=SqlUserEmails(engine),
        identity_links=SqlIdentityLinkStore(engine),
    )


def open_sql(database_url: str, sealer: Sealing) -> Stores:
    return sql_stores(make_engine(database_url), sealer)
