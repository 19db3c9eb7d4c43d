"""Assembles the authorization server from settings: stores, keys, client auth, grants, endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from ..config import ConfigError, Settings
from ..fhir.directory import FhirDirectory
from ..fhir.store import FhirStore
from ..gateway.catalog import PortalApi, load_catalog
from ..gateway.config import GatewayConfigError
from ..keys import ASYMMETRIC_ALGS, HMAC_ALGS
from ..outbound import SafeFetcher
from ..server.audit import audit
from ..server.authorize import PROMPTS
from ..server.changes import ChangeWatcher
from ..server.claims import OIDC_SCOPES, SCOPE_CLAIMS
from ..server.client_auth import AUTH_METHODS, AssertionRules, ClientAuthenticator, FailureThrottle
from ..server.client_keys import ClientKeyResolver
from ..server.credentials import Sealer
from ..server.endpoints.introspect import IntrospectionEndpoint
from ..server.endpoints.register import RegistrationEndpoint
from ..server.endpoints.revoke import RevocationEndpoint
from ..server.endpoints.token import TokenEndpoint
from ..server.endpoints.userinfo import UserinfoEndpoint
from ..server.factors import SecondFactor
from ..server.federation.accounts import FederationAccounts
from ..server.federation.login import FederationLogin
from ..server.flow import AuthorizationFlow
from ..server.grants import Grant
from ..server.grants.rotation import RotationGrace
from ..server.id_tokens import IdTokenIssuer, id_token_algs
from ..server.inspection import TokenInspector
from ..server.keyring import KeyRing
from ..server.logout import LogoutService
from ..server.mfa.factors import RecoveryCodeFactor, TotpFactor
from ..server.mfa.service import MfaService
from ..server.passkeys import PasskeyFactor, PasskeyService
from ..server.patient_access import PatientAccess
from ..server.policy.clients import ClientRules, SelfServiceApi
from ..server.policy.levels import LEVELS
from ..server.registration import ClientRegistry
from ..server.signin.requirement import LevelPolicy
from ..server.signin.service import InteractionService
from ..server.subjects import SubjectMapper
from ..server.tokens import TokenIssuer
from ..server.user_tokens import UserTokenService
from ..server.users import UserService, login_limits
from ..smart.directory import ClinicalDirectory
from ..smart.launch import LaunchService
from ..store import Client, ClientStore, KeyStore, ReplayCache, StateStore, TokenStore
from ..store.backend import Database, Stores
from ..store.changes import ChangeLog
from ..store.identity import ConsentStore, SessionStore, ThrottleRule, UserStore
from .federation import federation_login
from .grants import GrantDeps, build_grants
from .mail import MailServices, mail_services
from .passkeys import passkey_service
from .storage import open_stores, sql_engine

__all__ = ["PATHS", "CachedClients", "Provider", "open_provider", "server_metadata"]

log = logging.getLogger("ostiary")
SMART_BACKEND_ASSERTION_LIFETIME = 300  # SMART Backend Services: exp no more than five minutes ahead

PATHS = {
    "authorization_endpoint": "/authorize",
    "userinfo_endpoint": "/userinfo",
    "end_session_endpoint": "/logout",
    "token_endpoint": "/token",
    "introspection_endpoint": "/introspect",
    "revocation_endpoint": "/revoke",
    "jwks_uri": "/jwks",
    "registration_endpoint": "/register",
}


class CachedClients:
    """Client lookups cached per node for `ttl` seconds (DESIGN: hot path has no DB read).

    Nothing is served past its `ttl` (a change made elsewhere is visible within `ttl`). In the last
    fifth of an entry's life, one background task re-reads it (refresh-ahead), so under load an
    entry never expires and in-flight requests never queue on the database together. Misses and
    expired entries are read once (single-flight) while every caller waits for that one read.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, store: ClientStore, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Client | None]] = {}
        self._loading: dict[str, asyncio.Task[Client | None]] = {}
        self._generation = 0  # a read started before an invalidation must not fill the cache after it

    async def get(self, client_id: str) -> Client | None:
        now = time.monotonic()
        hit = self._cache.get(client_id)
        if hit is not None and hit[0] > now:
            if hit[0] - now < self._ttl / 5 and client_id not in self._loading:
                self._loading[client_id] = asyncio.create_task(self._load(client_id))
            return hit[1]
        if len(client_id) > 255:
            return None
        task = self._loading.get(client_id)
        if task is None:
            task = asyncio.create_task(self._load(client_id))
            self._loading[client_id] = task
        return await asyncio.shield(task)

    async def _load(self, client_id: str) -> Client | None:
        generation = self._generation
        try:
            client = await self._store.get(client_id)
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()  # bounded: unknown ids cannot grow it without limit
            if generation == self._generation:
                self._cache[client_id] = (time.monotonic() + self._ttl, client)
            return client
        finally:
            if self._loading.get(client_id) is asyncio.current_task():
                self._loading.pop(client_id, None)

    def invalidate(self, client_id: str | None = None) -> None:
        """Forget cached clients (all, or one); reads already under way no longer count."""
        self._generation += 1
        if client_id is None:
            self._cache.clear()
            self._loading.clear()
        else:
            self._cache.pop(client_id, None)
            self._loading.pop(client_id, None)


@dataclass(frozen=True)
class Provider:
    """The server's parts, built once from settings (open_provider); typed by the store Protocols, so
    any backend (SQL, memory) serves it."""

    settings: Settings
    database: Database
    clients: ClientStore
    cached_clients: CachedClients
    key_store: KeyStore
    keyring: KeyRing
    tokens: TokenStore
    replay: ReplayCache
    state: StateStore
    sealer: Sealer
    registry: ClientRegistry
    authenticator: ClientAuthenticator
    key_resolver: ClientKeyResolver
    fetcher: SafeFetcher  # the one way to request a client-supplied URL (docs/security.md: outbound requests)
    issuer: TokenIssuer
    grants: Mapping[str, Grant]
    token_endpoint: TokenEndpoint
    introspection: IntrospectionEndpoint
    revocation: RevocationEndpoint
    registration: RegistrationEndpoint
    inspector: TokenInspector
    users: UserStore
    user_service: UserService
    flow: AuthorizationFlow
    signin: InteractionService  # the sign-in engine: every browser step goes through it
    userinfo: UserinfoEndpoint
    logout: LogoutService
    consents: ConsentStore
    sessions: SessionStore
    patient_access: PatientAccess
    changes: ChangeLog
    watcher: ChangeWatcher
    mfa: MfaService  # authenticator app (TOTP) and recovery codes
    federated_accounts: FederationAccounts  # identities at upstream providers linked to users
    stores: Stores  # every store of the backend (those above are its most used ones)
    launches: LaunchService | None = None
    fhir_store: FhirStore | None = None  # this server's FHIR data, when SMART is on
    directory: ClinicalDirectory | None = None  # the FHIR data behind the launch pages, when served
    redis: Redis | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    portal_apis: tuple[PortalApi, ...] = ()  # the developer portal's APIs (settings.portal.gateway_config)
    passkeys: PasskeyService | None = None  # None when the issuer cannot be a WebAuthn relying party
    # Second factors by name (server.factors.SecondFactor): each feature registers its own in _assemble.
    factors: dict[str, SecondFactor] = field(default_factory=dict)
    mail: MailServices | None = None  # password reset and email verification, when [smtp] is set
    federation_login: FederationLogin | None = None  # the upstream providers of settings.federation, if any

    @property
    def engine(self) -> AsyncEngine:
        """The SQL engine, for what only SQL serves; ConfigError with the memory backend."""
        return sql_engine(self.database)

    def url(self, name: str) -> str:
        return self.settings.issuer + PATHS[name]

    async def revoke_user_grants(self, user_id: str, client_id: str) -> int:
        """End every grant a user gave a client (consent withdrawn): its tokens stop working."""
        grants = await self.tokens.grant_ids_for(client_id, user_id)
        for grant_id in grants:
            await self.tokens.revoke_grant(grant_id)
        audit("consent_revoked", sub=user_id, client_id=client_id, grants_revoked=len(grants))
        return len(grants)

    async def signal_change(self) -> None:
        """Tell every node (this one at once) that clients, keys or users changed (server.changes)."""
        await self.changes.bump()
        await self.reload_changed()

    async def reload_changed(self) -> None:
        self.cached_clients.invalidate()
        await self.keyring.refresh(force=True)

    async def aclose(self) -> None:
        await self.logout.drain()
        if self.mail is not None:
            await self.mail.links.drain()
        await self.fetcher.aclose()
        if self.federation_login is not None:
            await self.federation_login.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.aclose()


def server_metadata(settings: Settings, grants: Mapping[str, Grant], registration: bool) -> dict[str, Any]:
    """RFC 8414 §2 / OIDC Discovery §3 metadata: exactly what this server supports, nothing more."""
    iss = settings.issuer
    public_ok = any(g.public_clients for g in grants.values())
    methods = [m for m in AUTH_METHODS if m != "none" or public_ok]
    confidential = [m for m in AUTH_METHODS if m != "none"]
    meta: dict[str, Any] = {
        "issuer": iss,
        "token_endpoint": iss + PATHS["token_endpoint"],
        "jwks_uri": iss + PATHS["jwks_uri"],
        "introspection_endpoint": iss + PATHS["introspection_endpoint"],
        "revocation_endpoint": iss + PATHS["revocation_endpoint"],
        "authorization_endpoint": iss + PATHS["authorization_endpoint"],
        "userinfo_endpoint": iss + PATHS["userinfo_endpoint"],
        "end_session_endpoint": iss + PATHS["end_session_endpoint"],
        "grant_types_supported": sorted(grants),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "scopes_supported": sorted(OIDC_SCOPES),
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": list(id_token_algs(settings)),
        "code_challenge_methods_supported": ["S256"],
        # Every ID token states the level its sign-in met (server.policy.levels), weakest first.
        "acr_values_supported": list(LEVELS),
        "claims_supported": sorted({"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp",
                                    "sid", *(c for names in SCOPE_CLAIMS.values() for c in names)}),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": sorted(PROMPTS),
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,  # OIDC Front-Channel Logout 1.0 §3
        "frontchannel_logout_session_supported": True,
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": [*ASYMMETRIC_ALGS, *HMAC_ALGS],
        "introspection_endpoint_auth_methods_supported": confidential,
        "introspection_endpoint_auth_signing_alg_values_supported": [*ASYMMETRIC_ALGS, *HMAC_ALGS],
        "revocation_endpoint_auth_methods_supported": [*confidential, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": [*ASYMMETRIC_ALGS, *HMAC_ALGS],
        "access_token_signing_alg_values_supported": [settings.tokens.signing_alg],
    }
    if registration:
        meta["registration_endpoint"] = iss + PATHS["registration_endpoint"]
    return meta


async def open_provider(settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None) -> Provider:
    """Connect to storage and build every component; does not migrate (see bootstrap)."""
    sealer = Sealer()  # its key is installed by load_secret_key() at startup, before any migration
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    return _assemble(settings, open_stores(settings, sealer, redis), redis, sealer, http_transport)


def load_portal_apis(settings: Settings) -> tuple[PortalApi, ...]:
    """The developer portal's APIs: the self-service routes of the gateway file, if one is configured."""
    if settings.portal.gateway_config is None:
        return ()
    try:
        return load_catalog(settings.portal.gateway_config)
    except GatewayConfigError as exc:
        raise ConfigError(f"portal.gateway_config: {exc}") from None


def _assemble(settings: Settings, stores: Stores, redis: Redis | None, sealer: Sealer,
              http_transport: httpx.AsyncBaseTransport | None) -> Provider:
    cached = CachedClients(stores.clients, settings.cache_ttl)
    keyring = KeyRing(stores.keys, settings.cache_ttl)
    tokens, users, throttle, replay = stores.tokens, stores.users, stores.throttle, stores.replay
    issuer = TokenIssuer(settings.issuer, keyring, tokens, settings.tokens)
    portal_apis = load_portal_apis(settings)
    client_rules = ClientRules.from_settings(settings.registration,
                                             [SelfServiceApi(api.audience, api.scopes) for api in portal_apis])
    limits = login_limits(settings)
    user_service = UserService(users, throttle, limits, frozenset(settings.oidc.custom_claims), stores.email_links)
    subjects = SubjectMapper(stores.state.get_or_create)
    id_tokens = IdTokenIssuer(settings.issuer, keyring, settings.oidc.id_token_lifetime, subjects)
    fhir_store = FhirStore(sql_engine(stores.database)) if settings.smart.enabled else None
    directory = FhirDirectory(fhir_store) if fhir_store is not None else None
    patient_access = PatientAccess(stores.access, settings.fhir_base_url, directory)
    user_tokens = UserTokenService(issuer, id_tokens, users, settings.oidc,
                                   settings.tokens.default_audience or settings.issuer, patient_access.fhir_user,
                                   patient_access.token_claims)
    codes, sessions, consents, interactions = stores.codes, stores.sessions, stores.consents, stores.interactions
    mfa = MfaService(stores.mfa, throttle, limits.user, settings.branding.name, sessions)
    grace = RotationGrace(tokens, settings.oidc.refresh_token_grace_period, sealer.seal, sealer.unseal)
    grants = build_grants(GrantDeps(settings, issuer, user_tokens, tokens, codes, sessions, client_rules, grace))
    fetcher = SafeFetcher(allow_loopback=settings.outbound.allow_loopback,
                          negative_ttl=settings.outbound.negative_cache_ttl, transport=http_transport)
    registry = ClientRegistry(stores.clients, sealer.seal, grants, client_rules,
                              allow_loopback=settings.outbound.allow_loopback, fetcher=fetcher,
                              id_token_algs=id_token_algs(settings))
    resolver = ClientKeyResolver(fetcher, timeout=settings.client_auth.jwks_fetch_timeout,
                                 ttl=settings.client_auth.jwks_cache_ttl)
    iss = settings.issuer
    rules = AssertionRules(
        audiences=frozenset({iss, iss + "/", iss + PATHS["token_endpoint"]}),
        max_lifetime=settings.client_auth.assertion_max_lifetime,
        backend_max_lifetime=SMART_BACKEND_ASSERTION_LIFETIME if settings.smart.enabled else None,
    )
    failures = FailureThrottle(throttle, ThrottleRule(free=settings.throttle.client_auth_failures,
                                                      max_delay=settings.throttle.max_delay,
                                                      window=settings.throttle.window))
    authenticator = ClientAuthenticator(cached, replay, resolver, rules, sealer.unseal, failures)
    watcher = ChangeWatcher(stores.changes, settings.change_poll_interval)
    inspector = TokenInspector(iss, keyring, tokens, cached, subject_revoked=watcher.revoked)
    launches = (LaunchService(interactions, settings.smart.launch_lifetime, settings.fhir_base_url, replay,
                              settings.smart.fhir_bases)
                if settings.smart.enabled else None)
    factors: dict[str, SecondFactor] = {}  # filled below by each second factor, in the order the page shows them
    passkeys = passkey_service(settings, stores)
    if passkeys is not None:
        factors[PasskeyFactor.name] = PasskeyFactor(passkeys)
    factors.update({TotpFactor.name: TotpFactor(mfa), RecoveryCodeFactor.name: RecoveryCodeFactor(mfa)})
    flow = AuthorizationFlow(
        issuer=iss, clients=cached, users=users, user_service=user_service, sessions=sessions,
        consents=consents, codes=codes, interactions=interactions, keyring=keyring,
        settings=settings.oidc, smart=launches, subjects=subjects,
        patients=patient_access if launches is not None else None,
        levels=LevelPolicy(factors, settings.signin.required_acr),
    )
    logout = LogoutService(iss, cached, sessions, keyring, id_tokens, fetcher,
                           settings.oidc.backchannel_logout_timeout)
    registration = RegistrationEndpoint(
        registry, stores.clients,
        initial_tokens=[t for t in (settings.registration_token, settings.registration.initial_access_token) if t],
        open_registration=settings.registration.open, endpoint_url=iss + PATHS["registration_endpoint"],
        unseal=sealer.unseal,
        throttle=(throttle, ThrottleRule(free=settings.throttle.open_registrations,
                                         max_delay=settings.throttle.max_delay, window=settings.throttle.window)),
    )
    provider = Provider(
        settings=settings, database=stores.database, clients=stores.clients, cached_clients=cached,
        key_store=stores.keys, keyring=keyring, tokens=tokens, replay=replay, state=stores.state, sealer=sealer,
        registry=registry, authenticator=authenticator, key_resolver=resolver, fetcher=fetcher, issuer=issuer,
        grants=grants,
        token_endpoint=TokenEndpoint(authenticator, grants),
        introspection=IntrospectionEndpoint(authenticator, inspector, cached, client_rules, users,
                                            patient_access.introspection_claims),
        revocation=RevocationEndpoint(authenticator, inspector, tokens),
        registration=registration, inspector=inspector, redis=redis, users=users, user_service=user_service,
        flow=flow, signin=InteractionService(flow, factors), factors=factors,
        userinfo=UserinfoEndpoint(inspector, users, tokens, subjects=(subjects, cached),
                                             fhir_user=patient_access.fhir_user), logout=logout,
        consents=consents, sessions=sessions, launches=launches, changes=stores.changes, watcher=watcher,
        patient_access=patient_access, mfa=mfa, stores=stores, fhir_store=fhir_store, directory=directory,
        metadata=server_metadata(settings, grants, registration.enabled), portal_apis=portal_apis,
        passkeys=passkeys,
        federated_accounts=FederationAccounts(stores.identity_links, users),
        federation_login=federation_login(settings, replay, http_transport),
        mail=mail_services(settings, stores.email_links, stores.user_emails, users, user_service, throttle, sessions,
                           tokens, stores.changes),
    )
    watcher.on_change(provider.reload_changed)
    return provider
