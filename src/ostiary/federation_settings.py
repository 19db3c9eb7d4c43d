"""Settings of upstream OpenID Connect providers (federation): the ``[[federation]]`` tables of the TOML file.

Part of the settings tree of ``ostiary.config`` (``Settings.federation``), kept apart for its size; the
checks run in ``config.validate``.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["DEFAULT_CLAIM_MAPPING", "NEVER_FROM_UPSTREAM", "FederationProvider", "check_federation",
           "read_client_secret"]

# Profile claims copied from an upstream provider by default: local claim name -> upstream claim name.
DEFAULT_CLAIM_MAPPING: Mapping[str, str] = types.MappingProxyType({
    "name": "name", "given_name": "given_name", "family_name": "family_name", "email": "email",
    "locale": "locale"})
# Local claims an upstream never sets (red team, docs/security.md): `preferred_username` is this server's
# unique username (an upstream's could be a local user's, and applications match accounts by it);
# `email_verified` means verified here (a provisioned user's address starts unverified).
NEVER_FROM_UPSTREAM = frozenset({"preferred_username", "email_verified"})


@dataclass(frozen=True, slots=True)
class FederationProvider:
    """An upstream OpenID Connect provider (docs/sign-in.md, federation): one ``[[federation]]`` table."""

    id: str = ""  # in URLs (/federation/{id}/...) and in linked identities: letters, digits, - and _
    issuer: str = ""  # OIDC Discovery §4: {issuer}/.well-known/openid-configuration, fetched and cached
    client_id: str = ""
    # The client secret is never in the TOML file: the name of an environment variable holding it,
    # or a file (a container secret). Read once at start; never printed (repr=False).
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    client_secret: str = field(default="", repr=False)
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    label: str = ""  # the button: "Sign in with {label}" (default: the id)
    # local claim -> upstream claim, for the profile of a user provisioned from it (first sign-in)
    claims: Mapping[str, str] = field(default_factory=lambda: DEFAULT_CLAIM_MAPPING)
    # Take the upstream `acr` / `amr` as this server's only when the administrator trusts the provider
    # for them; otherwise a federated sign-in is amr ["fed"] and never counts as multi-factor.
    trust_acr: bool = False
    trust_amr: bool = False
    # ID token signature algorithms accepted (never "none", never HMAC: RFC 8725 §3.1).
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    # Seconds of clock difference tolerated on the upstream's exp, iat and auth_time (RFC 7519 §4.1.4).
    clock_skew: int = 30
    # Also read the UserInfo endpoint for profile claims (OIDC Core §5.3): providers that follow §5.4
    # return the claims of the profile and email scopes there, not in the ID token.
    userinfo: bool = True
    # A first sign-in with an unknown upstream identity may create a new user (without access facts);
    # false: only linking to an existing account, after signing in to it.
    provision: bool = True


def read_client_secret(upstream: FederationProvider, env: Mapping[str, str]) -> str:
    """An upstream client secret from the environment variable or the file its table names; raises ConfigError."""
    from .config import ConfigError

    if upstream.client_secret:
        raise ConfigError(f"federation {upstream.id!r}: put the client secret in an environment variable "
                          "(client_secret_env) or a file (client_secret_file), not in the config file")
    if upstream.client_secret_env:
        value = env.get(upstream.client_secret_env)
        if not value:
            raise ConfigError(f"federation {upstream.id!r}: {upstream.client_secret_env} is not set")
        return value
    if upstream.client_secret_file:
        try:
            return Path(upstream.client_secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"federation {upstream.id!r}: cannot read client_secret_file: {exc.strerror}") from None
    return ""  # a public client upstream (PKCE only)


def check_federation(upstreams: tuple[FederationProvider, ...], reserved_claims: frozenset[str]) -> None:
    """Fail fast on an upstream provider that cannot work or would be unsafe; raises ConfigError."""
    from .config import ConfigError
    from .keys import ASYMMETRIC_ALGS

    seen: set[str] = set()
    for upstream in upstreams:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", upstream.id) or upstream.id in seen:
            raise ConfigError(f"federation: id {upstream.id!r} must be unique, 1-32 letters, digits, - or _")
        seen.add(upstream.id)
        parts = urlsplit(upstream.issuer)
        if parts.scheme not in {"https", "http"} or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"federation {upstream.id!r}: issuer must be an absolute https URL")
        if parts.scheme == "http" and parts.hostname not in {"localhost", "127.0.0.1", "::1"}:
            raise ConfigError(f"federation {upstream.id!r}: an http issuer is only allowed on loopback")
        if not upstream.client_id:
            raise ConfigError(f"federation {upstream.id!r}: client_id is required")
        if "openid" not in upstream.scopes:
            raise ConfigError(f"federation {upstream.id!r}: scopes must include openid")
        reserved = (reserved_claims | NEVER_FROM_UPSTREAM).intersection(upstream.claims)
        if reserved:  # access facts (fhirUser) and token claims never come from an upstream
            raise ConfigError(f"federation {upstream.id!r}: claims cannot set {', '.join(sorted(reserved))}")
        if not 0 <= upstream.clock_skew <= 300:
            raise ConfigError(f"federation {upstream.id!r}: clock_skew must be between 0 and 300 seconds")
        bad = [a for a in upstream.algorithms if a not in ASYMMETRIC_ALGS]
        if bad or not upstream.algorithms:
            raise ConfigError(f"federation {upstream.id!r}: algorithms must be among {', '.join(ASYMMETRIC_ALGS)}")
