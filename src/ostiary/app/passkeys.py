"""Passkeys from settings: the service when the issuer can be a WebAuthn relying party, else None."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from ..config import Settings
from ..server.passkeys import PasskeyService, PasskeysOff, RelyingParty
from ..store.sql.identity import SqlUserStore
from ..store.sql.passkeys import SqlChallengeStore, SqlPasskeyStore

__all__ = ["log_passkeys_off", "passkey_service"]

log = logging.getLogger("ostiary")


def passkey_service(settings: Settings, engine: AsyncEngine, users: SqlUserStore) -> PasskeyService | None:
    try:
        rp = RelyingParty.from_issuer(settings.issuer, settings.branding.name)
    except PasskeysOff:
        return None
    return PasskeyService(rp, SqlPasskeyStore(engine), SqlChallengeStore(engine), users)


def log_passkeys_off(settings: Settings) -> None:
    """Say once, at start, why passkeys are off (called by bootstrap, which runs once per start)."""
    try:
        RelyingParty.from_issuer(settings.issuer, settings.branding.name)
    except PasskeysOff as exc:
        log.info("%s", exc)
