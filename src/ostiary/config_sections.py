"""The sections of the settings tree (``[tokens]``, ``[oidc]``, ``[smtp]`` ...): one frozen dataclass each.

Part of ``ostiary.config`` (which re-exports them and holds ``Settings``, the checks and the loader), kept
apart for its size; environment names and defaults are described there and in docs/configuration.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BrandingSettings",
    "ClientAuthSettings",
    "HttpSettings",
    "KeySettings",
    "OidcSettings",
    "OutboundSettings",
    "PortalSettings",
    "RegistrationSettings",
    "SigninSettings",
    "SmartSettings",
    "SmtpSettings",
    "ThrottleSettings",
    "TokenSettings",
]


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
