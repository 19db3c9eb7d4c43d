"""First start, idempotent: migrations, the sealing key, signing keys, an imported key file, demo data."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..keys import KeyError_, signing_key_from_pem, signing_key_from_pkcs12
from ..server.credentials import new_secret
from ..server.id_tokens import id_token_algs
from ..server.keyring import activate, ensure_keys
from ..server.policy.clients import ClientUpgrade
from ..store.access import AccessFacts
from .passkeys import log_passkeys_off
from .provider import Provider
from .secret_key import load_secret_key

__all__ = ["DEMO_APP_ID", "DEMO_CLIENT_ID", "DEMO_USER", "BootstrapReport", "bootstrap", "load_secret_key",
           "max_token_lifetime"]

log = logging.getLogger("ostiary")


@dataclass(frozen=True, slots=True)
class BootstrapReport:
    created_keys: tuple[str, ...] = ()
    imported_key: str | None = None
    demo_client_id: str | None = None
    demo_client_secret: str | None = None  # only when the demo client was created just now
    demo_user: str | None = None
    demo_user_password: str | None = None  # only when the demo user was created just now
    demo_app_id: str | None = None


DEMO_CLIENT_ID = "demo"


def client_upgrade(provider: Provider) -> ClientUpgrade:
    """The policy that migrations apply to clients registered before it (this server's settings)."""
    return ClientUpgrade.from_settings(provider.settings, provider.registry.rules)


async def bootstrap(provider: Provider) -> BootstrapReport:
    """First-start work, idempotent: migrations, keys, an imported key file, the demo client.

    Nodes starting together on an empty database take turns (one database-wide lock): the first
    creates one key set and one demo client, the others find them (docs/security.md, concurrency).
    """
    load_secret_key(provider)  # first (no database needed): the migrations seal what was kept in plaintext
    log_passkeys_off(provider.settings)
    async with provider.database.startup_lock():
        return await _first_start(provider)


async def _first_start(provider: Provider) -> BootstrapReport:
    settings = provider.settings
    for line in await provider.database.migrate(client_upgrade(provider)):
        log.warning("upgrade report: %s", line)  # docs/security.md "Existing registrations"
    algs = list(dict.fromkeys([settings.tokens.signing_alg, *settings.keys.generate, *id_token_algs(settings)]))
    created = await ensure_keys(provider.key_store, algs)
    imported = await _import_configured_key(provider)
    await provider.keyring.refresh(force=True)
    demo_id = demo_secret = demo_password = None
    if settings.demo_enabled:
        demo_id = DEMO_CLIENT_ID
        if await provider.clients.get(DEMO_CLIENT_ID) is None:
            _, issued = await provider.registry.create(
                {"client_name": "Demo client", "grant_types": ["client_credentials"],
                 "scope": "api:read api:write", "token_endpoint_auth_method": "client_secret_basic"},
                client_id=DEMO_CLIENT_ID,
            )
            demo_secret = issued.client_secret
        demo_password = await _demo_user_and_app(provider)
    sample = settings.smart.sample_data if settings.smart.sample_data is not None else settings.demo_enabled
    if provider.fhir_store is not None and sample:
        from ..fhir.sample import load_sample

        await load_sample(provider.fhir_store)
    await provider.tokens.purge_expired(int(time.time()))
    return BootstrapReport(created_keys=tuple(k.kid for k in created), imported_key=imported,
                           demo_client_id=demo_id, demo_client_secret=demo_secret,
                           demo_user=DEMO_USER if settings.demo_enabled else None, demo_user_password=demo_password,
                           demo_app_id=DEMO_APP_ID if settings.demo_enabled else None)


DEMO_USER = "demo"
DEMO_APP_ID = "demo-app"


async def _demo_user_and_app(provider: Provider) -> str | None:
    """A user to log in as, and a public app (PKCE) whose redirect is the server's own /demo/callback."""
    password = None
    if await provider.users.by_username(DEMO_USER) is None:
        password = new_secret()[:16]
        claims: dict[str, Any] = {"name": "Demo User", "email": "demo@example.org", "email_verified": True}
        user = await provider.user_service.create(DEMO_USER, password, claims)
        if provider.settings.smart.enabled:  # a practitioner who may see every sample patient, explicitly
            await provider.patient_access.facts.put(AccessFacts(
                user.id, fhir_user="Practitioner/prac-01", roles=frozenset({"launch"}), all_patients=True))
    if await provider.clients.get(DEMO_APP_ID) is None:
        await provider.registry.create(
            {"client_name": "Demo app", "grant_types": ["authorization_code", "refresh_token"],
             "token_endpoint_auth_method": "none",
             "redirect_uris": [provider.settings.issuer + "/demo/callback"]},
            client_id=DEMO_APP_ID,
        )
    return password


async def _import_configured_key(provider: Provider) -> str | None:
    ks = provider.settings.keys
    if not (ks.key_file or ks.pkcs12_file):
        return None
    passphrase = ks.passphrase.encode() if ks.passphrase else None
    try:
        if ks.pkcs12_file:
            key = signing_key_from_pkcs12(Path(ks.pkcs12_file).read_bytes(), passphrase=passphrase)
        else:
            assert ks.key_file is not None
            cert = Path(ks.cert_file).read_bytes() if ks.cert_file else None
            key = signing_key_from_pem(Path(ks.key_file).read_bytes(), cert, passphrase=passphrase)
    except OSError as exc:
        raise KeyError_(f"cannot read key file: {exc.strerror}") from None
    await activate(provider.key_store, key, max_token_lifetime=await max_token_lifetime(provider))
    if key.alg != provider.settings.tokens.signing_alg:
        log.warning("imported key %s is %s but tokens are signed with %s (set OSTIARY_TOKENS__SIGNING_ALG)",
                    key.kid, key.alg, provider.settings.tokens.signing_alg)
    return key.kid


async def max_token_lifetime(provider: Provider) -> int:
    """The longest any token signed now may live: how long a retired key must stay published."""
    lifetimes = [provider.settings.tokens.access_token_lifetime]
    lifetimes += [c.access_token_lifetime for c in await provider.clients.list() if c.access_token_lifetime]
    return max(lifetimes)
