"""Passkeys from settings: the service when the issuer can be a WebAuthn relying party, else None."""

from __future__ import annotations

import logging

from ..config import Settings
from ..server.audit import audit
from ..server.passkeys import PasskeyService, PasskeysOff, RelyingParty
from ..store.backend import Stores
from ..store.passkeys import PasskeyStore

__all__ = ["log_passkeys_off", "passkey_credentials", "passkey_service", "remove_all_passkeys"]

log = logging.getLogger("ostiary")


def passkey_service(settings: Settings, stores: Stores) -> PasskeyService | None:
    try:
        rp = RelyingParty.from_issuer(settings.issuer, settings.branding.name)
    except PasskeysOff:
        return None
    return PasskeyService(rp, stores.passkeys, stores.passkey_challenges, stores.users, stores.sessions)


def log_passkeys_off(settings: Settings) -> None:
    """Say once, at start, why passkeys are off (called by bootstrap, which runs once per start)."""
    try:
        RelyingParty.from_issuer(settings.issuer, settings.branding.name)
    except PasskeysOff as exc:
        log.info("%s", exc)


def passkey_credentials(stores: Stores) -> PasskeyStore:
    """The stored credentials, also while passkeys are off (an administrator still sees and removes them)."""
    return stores.passkeys


async def remove_all_passkeys(stores: Stores, user_id: str) -> int:
    """`ostiary user mfa reset`: every passkey of the user goes (each audited `passkey_removed`)."""
    store, removed = passkey_credentials(stores), 0
    for credential in await store.list_for_user(user_id):
        if await store.remove(user_id, credential.credential_id):
            removed += 1
            audit("passkey_removed", sub=user_id, credential=credential.credential_id[:16], reason="mfa reset")
    return removed
