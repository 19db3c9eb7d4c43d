"""Settings: one frozen tree, loaded and validated once at startup.

Sources, later wins: defaults below < TOML file (``OSTIARY_CONFIG`` or ``--config``) < environment
< command-line overrides. Environment names are ``OSTIARY_<FIELD>`` for top-level fields and
``OSTIARY_<SECTION>__<FIELD>`` for a section (``OSTIARY_TOKENS__SIGNING_ALG=RS256``). Any variable
may instead be given as ``<NAME>_FILE``, naming a file that holds the value (container secrets).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

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


class ConfigError(ValueError):
    """A setting is missing, malformed or inconsistent; the message names it."""


@dataclass(frozen=True, slots=True)
class TokenSettings:
    # RFC 9068 JWT access tokens by default; "opaque" gives reference tokens (RFC 7662 to read).
    access_token_format: Literal["jwt", "opaque"] = "jwt"
    access_token_lifetime: int = 3600
    # JWS algorithm for access tokens; a key for it is generated on first start.
    signing_alg: str = "ES256"
    # What `scope=openid` on client_credentials does: "accept" keeps it in the token (no ID token
    # is issued, OIDC needs a user), "ignore" drops it from the granted scope, "reject" is invalid_scope.
    openid_on_client_credentials: Literal["accept", "ignore", "reject"] = "accept"
    # `aud` when the request names no resource (RFC 8707) and the client has no audiences; None = issuer.
    default_audience: str | None = None


@dataclass(frozen=True, slots=True)
class KeySettings:
    # Algorithms for which a key is generated on first start (and a "next" key, published early).
    generate: tuple[str, ...] = ("ES256", "RS256", "PS256", "EdDSA")
    # A key to import on start (PEM, with its X.509 chain; or PKCS#12). Idempotent: kid = thumbprint.
    key_file: str | None = None
    cert_file: str | None = None
    pkcs12_file: str | None = None
    passphrase: str | None = None


@dataclass(frozen=True, slots=True)
class ClientAuthSettings:
    # RFC 7523 §3: an assertion's exp must lie at most this far ahead (Authlib signs for 3600 s).
    assertion_max_lifetime: int = 3600
    # Client keys by jwks_uri: fetch timeout and cache time.
    jwks_fetch_timeout: float = 5.0
    jwks_cache_ttl: int = 300


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    # RFC 7591 dynamic registration; on when an initial access token is set or `open` is true.
    initial_access_token: str | None = None
    open: bool = False
    # Scopes a client registered with the initial access token may hold (docs/security.md), plus
    # `api_scopes`, the operator's own API scopes (for example "api:read api:write").
    registrant_scopes: tuple[str, ...] = (
        "openid", "profile", "email", "address", "phone", "fhirUser", "launch", "launch/patient",
        "launch/encounter", "offline_access", "online_access", "patient/*.*",
    )
    api_scopes: tuple[str, ...] = ()
    # Scopes an anonymous (open) registration may hold: a user-delegated patient app.
    open_scopes: tuple[str, ...] = ("openid", "fhirUser", "launch/patient", "patient/*.rs", "offline_access")


@dataclass(frozen=True, slots=True)
class OidcSettings:
    id_token_lifetime: int = 3600
    # SSO: how long a login lasts in a browser (OIDC Core §3.1.2.1 max_age can ask for less).
    session_lifetime: int = 8 * 3600
    code_lifetime: int = 60  # RFC 6749 §4.1.2: short-lived, single use
    interaction_lifetime: int = 900  # time to finish login and consent
    # Refresh tokens: absolute lifetime of a grant, and idle time after which an unused one dies.
    refresh_token_lifetime: int = 30 * 24 * 3600
    refresh_token_idle: int = 14 * 24 * 3600
    # RFC 9700 §4.14.2: rotate on every use ("always") or only for public clients ("public").
    refresh_token_rotation: Literal["always", "public"] = "always"
    # Seconds after a rotation in which the just-rotated refresh token yields the same successor
    # again instead of revoking the family (retries, lost responses). 0 = off (docs/security.md).
    refresh_token_grace_period: int = 0
    # PKCE S256 (RFC 7636): required for public clients always; for confidential ones too by default.
    pkce_required: bool = True
    # Failed logins before a growing lock-out, per username (an address gets four times as many).
    login_attempts: int = 5
    backchannel_logout_timeout: float = 5.0
    # Profile claims of the operator's own a user may carry besides OIDC's (for example "roles"); with
    # the `profile` scope granted they go into the access token, for resource-server policies.
    custom_claims: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    # Requests to client-supplied URLs (jwks_uri, logout URIs, ...) go only to public addresses over https.
    # Development only: also allow loopback (http or https to 127.0.0.0/8, ::1, localhost). Never in production.
    allow_loopback: bool = False
    # A URL that failed is not tried again for this long (seconds): a short negative cache.
    negative_cache_ttl: float = 30.0


@dataclass(frozen=True, slots=True)
class SmartSettings:
    # SMART App Launch 2.2: the FHIR API is served at issuer + fhir_path (its `aud`).
    enabled: bool = True
    fhir_path: str = "/fhir"
    # SMART Backend Services: tokens with system/ scopes live at most this long (spec: <= 5 minutes).
    backend_token_lifetime: int = 300
    launch_lifetime: int = 600  # how long an EHR launch value can be used
    # Load the generated sample patients on start (default: only with the demo data).
    sample_data: bool | None = None
    # Base URLs of FHIR gateways (`ostiary fhir-gateway`) in front of other FHIR servers: valid `aud`
    # values at /authorize and in tokens besides this server's own FHIR base.
    fhir_bases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HttpSettings:
    # Largest request body on any endpoint: a bigger Content-Length is 413 before reading, and a
    # streamed body is cut at this size (each endpoint may accept less; docs/security.md).
    max_body_bytes: int = 1 << 20
    # `ostiary serve`: seconds a client has to send a request's headers (slowloris), and the open
    # connections per worker (at the cap, the one waiting longest for its headers is dropped).
    header_timeout: float = 10.0
    max_connections: int = 1000
    # Strict-Transport-Security (RFC 6797) under an https issuer other than localhost; 0 = not sent.
    hsts_max_age: int = 31536000
    hsts_include_subdomains: bool = False


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    # Progressive delays (docs/security.md, throttling): after `free` attempts a key waits 2 s, then
    # 4, 8, ... up to `max_delay`; never a long lock-out. A quiet `window` (no attempt) starts afresh.
    max_delay: int = 60
    window: int = 900
    # Failed client authentications (invalid_client) per client_id and address at /token,
    # /introspect and /revoke before they are answered 429 with Retry-After.
    client_auth_failures: int = 10
    # Anonymous registrations (registration.open) per address before further ones wait (429).
    open_registrations: int = 20
    # Password hashes (argon2id, 64 MiB each) computed at once: 0 = the number of cores. Past
    # `password_hash_queue` waiting logins, a login is answered 429 at once.
    password_hash_concurrency: int = 0
    password_hash_queue: int = 32


@dataclass(frozen=True, slots=True)
class BrandingSettings:
    name: str = "Ostiary"
    logo_url: str | None = None
    primary_color: str = "#2f5d8a"
    background_color: str = "#f4f6f8"


@dataclass(frozen=True, slots=True)
class PortalSettings:
    # The API gateway's TOML file: its routes marked self_service are the APIs of the developer portal
    # (/developers) and of the "portal" trust level (docs/gateway.md). None: no portal.
    gateway_config: str | None = None


@dataclass(frozen=True, slots=True)
class SigninSettings:
    # The authentication level (acr) every sign-in to an application needs at least (docs/sign-in.md):
    # "urn:ostiary:acr:password", "urn:ostiary:acr:mfa", "phr" or "phrh". None: what the client and the
    # request ask for. A user with a second factor enrolled uses it at every sign-in anyway.
    required_acr: str | None = None


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    # Mail for password reset and email verification (docs/sign-in.md); no host: neither is offered.
    host: str | None = None
    port: int = 587
    # "starttls" (RFC 3207, usually port 587), "tls" (implicit TLS, RFC 8314, port 465), or "none":
    # plain SMTP, allowed only to a loopback host (a local relay or a test server).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    # Give the password as OSTIARY_SMTP__PASSWORD(_FILE) or `password_file`; it is never printed or logged.
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    from_address: str | None = None
    timeout: float = 10.0  # seconds for the whole exchange with the server
    reset_link_lifetime: int = 900  # at most 15 minutes
    verify_link_lifetime: int = 86400
    # A password reset ends every session and by default every grant (refresh tokens) and access token
    # of the user; true keeps the grants (apps stay connected, also a thief's: docs/sign-in.md).
    keep_refresh_tokens: bool = False


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


def _convert(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value == ""):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _convert(name, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, args))}, not {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        return tuple(str(v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        low = str(value).strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    if hint in (int, float):
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if hint is str:
        return str(value)
    if origin in (Mapping, dict) and isinstance(value, Mapping):
        return types.MappingProxyType({str(k): str(v) for k, v in value.items()})
    raise ConfigError(f"{name}: unsupported setting type {hint!r}")  # pragma: no cover


def _env_value(env: Mapping[str, str], name: str) -> str | None:
    if name in env:
        return env[name]
    path = env.get(name + "_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return None


def _build(cls: type[Any], data: Mapping[str, Any], env: Mapping[str, str], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        env_name = f"{prefix}{f.name.upper()}"
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            kwargs[f.name] = _build_tables(f.name, typing.get_args(hint)[0], data.get(f.name, []), env)
            continue
        if dataclasses.is_dataclass(hint):
            section = data.get(f.name, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"[{f.name}] must be a table")
            kwargs[f.name] = _build(hint, section, env, f"{env_name}__")  # type: ignore[arg-type]
            continue
        raw = _env_value(env, env_name)
        if raw is not None:
            kwargs[f.name] = _convert(env_name, raw, hint)
        elif f.name in data:
            kwargs[f.name] = _convert(f.name, data[f.name], hint)
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return cls(**kwargs)


def _build_tables(name: str, cls: type[Any], tables: Any, env: Mapping[str, str]) -> tuple[Any, ...]:
    """``[[name]]`` tables (a TOML array of tables), each built like a section; values from the file only."""
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(f"{name} must be a list of tables ([[{name}]])")
    built = []
    for table in tables:
        item = _build(cls, table, {}, "")
        if cls is FederationProvider:
            item = dataclasses.replace(item, client_secret=read_client_secret(item, env))
        built.append(item)
    return tuple(built)


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
    path = config_file or _env_value(env, "OSTIARY_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    settings: Settings = _build(Settings, data, env, "OSTIARY_")
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.replace(**clean) if clean else validate(settings)
