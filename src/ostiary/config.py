"""Settings: one frozen tree, loaded and validated once at startup.

Sources, later wins: defaults (``Settings`` below, its sections in ``config_sections``) < TOML file
(``OSTIARY_CONFIG`` or ``--config``, read by ``config_sources``) < environment < command-line overrides.
Environment names are ``OSTIARY_<FIELD>`` for top-level fields and ``OSTIARY_<SECTION>__<FIELD>`` for a
section (``OSTIARY_TOKENS__SIGNING_ALG=RS256``). Any variable may instead be given as ``<NAME>_FILE``,
naming a file that holds the value (container secrets).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

# The tree is split in sibling modules for size; every name is importable from here, as before.
from .config_sections import (
    BrandingSettings,
    ClientAuthSettings,
    HttpSettings,
    KeySettings,
    OidcSettings,
    OutboundSettings,
    PortalSettings,
    RegistrationSettings,
    SigninSettings,
    SmartSettings,
    SmtpSettings,
    ThrottleSettings,
    TokenSettings,
)
from .config_sources import ConfigError, build, env_value
from .federation_settings import FederationProvider, check_federation, read_client_secret

__all__ = [
    "BrandingSettings",
    "ClientAuthSettings",
    "ConfigError",
    "FederationProvider",
    "HttpSettings",
    "KeySettings",
    "OidcSettings",
    "OutboundSettings",
    "PortalSettings",
    "RegistrationSettings",
    "Settings",
    "SigninSettings",
    "SmartSettings",
    "SmtpSettings",
    "ThrottleSettings",
    "TokenSettings",
    "load_settings",
]

DEFAULT_DATABASE_URL = "sqlite:///ostiary.db"
MEMORY_DATABASE_URL = "memory:"  # the in-memory backend (ostiary.store.memory)


@dataclass(frozen=True, slots=True)
class Settings:
    # RFC 8414 §2: https, no query or fragment; http is allowed for loopback development.
    issuer: str = "http://127.0.0.1:8000"
    # sqlite:///PATH or postgresql://USER@HOST:PORT/DB; "memory:" keeps everything in this process
    # only (tests and demos on one node, never production: docs/configuration.md).
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    # Initial access token for /register (RFC 7591 §3); also OSTIARY_REGISTRATION_TOKEN.
    registration_token: str | None = None
    # Seals what must be recoverable: private signing keys, client_secret_jwt keys, registration
    # access tokens (docs/security.md, secrets at rest). Required with PostgreSQL (every node needs the
    # same); unset on SQLite, one is generated into a 0600 file beside the database file.
    secret_key: str | None = None
    # During a rotation: the key being replaced. What it sealed still opens; `ostiary keys rewrap`
    # re-seals everything under secret_key, after which this is removed.
    secret_key_previous: str | None = None
    # How long a node trusts its cached clients and keys before reading them again (seconds).
    cache_ttl: float = 5.0
    # How often each node reads the change signal (seconds): management changes (client rotate-secret
    # or delete, user disable, key rotation) take effect on every node within this time.
    change_poll_interval: float = 0.5
    # Browser origins allowed CORS besides those of registered clients' redirect URIs (web/cors.py).
    cors_origins: tuple[str, ...] = ()
    # Reverse proxies (IP addresses or CIDR networks) whose X-Forwarded-For / Forwarded headers give
    # the client address; from anyone else these headers are ignored (docs/configuration.md).
    trusted_proxies: tuple[str, ...] = ()
    # The one header those proxies set: "x-forwarded-for" (nginx, Caddy, Traefik, HAProxy) or RFC 7239
    # "forwarded". The other is ignored: proxies pass a client's own copy of it through untouched.
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # Create a demo client on first start. None: only on the default SQLite database.
    demo: bool | None = None
    # Log level for the `ostiary` loggers.
    log_level: str = "info"
    tokens: TokenSettings = field(default_factory=TokenSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    client_auth: ClientAuthSettings = field(default_factory=ClientAuthSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    smart: SmartSettings = field(default_factory=SmartSettings)
    branding: BrandingSettings = field(default_factory=BrandingSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    portal: PortalSettings = field(default_factory=PortalSettings)
    signin: SigninSettings = field(default_factory=SigninSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    # Upstream OpenID Connect providers, ``[[federation]]`` tables in the TOML file (not from the environment).
    federation: tuple[FederationProvider, ...] = ()

    @property
    def demo_enabled(self) -> bool:
        return self.database_url == DEFAULT_DATABASE_URL if self.demo is None else self.demo

    @property
    def fhir_base_url(self) -> str:
        return self.issuer + self.smart.fhir_path

    @property
    def registration_enabled(self) -> bool:
        return bool(self.registration_token or self.registration.initial_access_token or self.registration.open)

    def replace(self, **changes: Any) -> Settings:
        return validate(dataclasses.replace(self, **changes))


# Claims the server sets itself (RFC 9068 §2.2, OIDC Core §2, SMART launch and access facts): never custom.
_RESERVED_CLAIMS = frozenset({
    "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "auth_time", "acr", "amr", "sid", "nonce",
    "azp", "cnf", "fhirUser", "patient", "encounter", "fhirContext", "tenant",
})


def validate(settings: Settings) -> Settings:
    """Fail fast on settings that cannot work; returns the settings unchanged."""
    parts = urlsplit(settings.issuer)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigError(f"issuer must be an absolute https URL, not {settings.issuer!r}")
    if parts.query or parts.fragment:
        raise ConfigError("issuer must have no query or fragment (RFC 8414 §2)")
    if parts.scheme == "http" and parts.hostname not in {"localhost", "127.0.0.1", "::1"} and not (
        parts.hostname.endswith(".localhost")
    ):
        raise ConfigError("an http issuer is only allowed on loopback; use https (RFC 8414 §2)")
    if settings.issuer.endswith("/"):
        raise ConfigError("issuer must not end with '/'")
    from .keys import ASYMMETRIC_ALGS

    if settings.tokens.signing_alg not in ASYMMETRIC_ALGS:
        raise ConfigError(f"tokens.signing_alg must be one of {', '.join(ASYMMETRIC_ALGS)}")
    for alg in settings.keys.generate:
        if alg not in ASYMMETRIC_ALGS:
            raise ConfigError(f"keys.generate: unknown algorithm {alg!r}")
    if settings.tokens.access_token_lifetime <= 0:
        raise ConfigError("tokens.access_token_lifetime must be positive")
    reserved = _RESERVED_CLAIMS.intersection(settings.oidc.custom_claims)
    if reserved:
        raise ConfigError(f"oidc.custom_claims: {', '.join(sorted(reserved))} cannot be a custom claim "
                          "(token, protocol and access claims are set by the server)")
    if not 0 < settings.change_poll_interval <= 60:
        raise ConfigError("change_poll_interval must be between 0 and 60 seconds")
    import re

    for colour in (settings.branding.primary_color, settings.branding.background_color):
        if not re.fullmatch(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?", colour):
            raise ConfigError(f"branding colours must be #rgb or #rrggbb, not {colour!r}")
    _check_throttle(settings)
    if settings.signin.required_acr is not None:
        from .server.policy.levels import LEVELS  # only then: the guard and the jwt tools load no server code

        if settings.signin.required_acr not in LEVELS:
            raise ConfigError(f"signin.required_acr must be one of {', '.join(LEVELS)}")
    _check_smtp(settings.smtp)
    check_federation(settings.federation, _RESERVED_CLAIMS)
    for name in ("secret_key", "secret_key_previous"):
        value = getattr(settings, name)
        if value is not None and len(value) < 32:
            raise ConfigError(f"{name} must be at least 32 characters (e.g. 43 from secrets.token_urlsafe(32))")
    if settings.database_url == MEMORY_DATABASE_URL:
        if settings.smart.enabled:
            raise ConfigError('database_url "memory:" holds no FHIR data: set smart.enabled = false '
                              "(OSTIARY_SMART__ENABLED=false), or use a SQL database")
    elif not settings.database_url.split(":", 1)[0].startswith(("sqlite", "postgres")):
        raise ConfigError('database_url must be sqlite:///PATH, postgresql://USER@HOST:PORT/DB or "memory:"')
    return settings


def _check_throttle(settings: Settings) -> None:
    import ipaddress

    for network in settings.trusted_proxies:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"trusted_proxies: {network!r} is not an IP address or CIDR network") from None
    t = settings.throttle
    if min(t.max_delay, t.window, t.client_auth_failures, t.password_hash_queue) < 1 or t.password_hash_concurrency < 0:
        raise ConfigError("throttle settings must be positive (password_hash_concurrency may be 0: the core count)")


def _check_smtp(smtp: SmtpSettings) -> None:
    if smtp.host is None:
        return
    if smtp.security == "none" and smtp.host not in {"localhost", "127.0.0.1", "::1"}:
        raise ConfigError("smtp.security = \"none\" sends passwords and links in clear text: only to a loopback host")
    from .mailer import valid_address

    if not smtp.from_address or not valid_address(smtp.from_address):
        raise ConfigError("smtp.from_address must be one email address (name@domain)")
    if not 0 < smtp.timeout <= 120 or not 0 < smtp.port < 65536:
        raise ConfigError("smtp.timeout must be 0-120 seconds and smtp.port 1-65535")
    if not 60 <= smtp.reset_link_lifetime <= 900 or not 60 <= smtp.verify_link_lifetime <= 7 * 86400:
        raise ConfigError("smtp.reset_link_lifetime must be 60-900 s, smtp.verify_link_lifetime 60 s to 7 days")


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    **overrides: Any,
) -> Settings:
    """Settings from defaults, an optional TOML file, the environment and overrides (in that order)."""
    env = os.environ if env is None else env
    path = config_file or env_value(env, "OSTIARY_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    settings: Settings = build(Settings, data, env, "OSTIARY_")
    if settings.federation:  # the upstream client secrets: from the environment or files, never the TOML
        settings = dataclasses.replace(settings, federation=tuple(
            dataclasses.replace(u, client_secret=read_client_secret(u, env)) for u in settings.federation))
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.replace(**clean) if clean else validate(settings)
