"""The token endpoint's grant table, built from settings: a new grant type is one entry in GRANT_TYPES."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import Settings
from ..server.grants import Grant
from ..server.grants.authorization_code import AuthorizationCodeGrant
from ..server.grants.client_credentials import ClientCredentialsGrant
from ..server.grants.refresh_token import RefreshTokenGrant
from ..server.grants.rotation import RotationGrace
from ..server.policy.clients import ClientRules
from ..server.tokens import TokenIssuer
from ..server.user_tokens import UserTokenService
from ..store.grants import CodeStore
from ..store.identity import SessionStore
from ..store.protocols import TokenStore

__all__ = ["GRANT_TYPES", "GrantDeps", "build_grants"]


@dataclass(frozen=True, slots=True)
class GrantDeps:
    """What the grants may be built from (each takes the few parts it needs)."""

    settings: Settings
    issuer: TokenIssuer
    user_tokens: UserTokenService
    tokens: TokenStore
    codes: CodeStore
    sessions: SessionStore
    client_rules: ClientRules
    grace: RotationGrace


def _client_credentials(d: GrantDeps) -> Grant:
    s = d.settings
    return ClientCredentialsGrant(d.issuer, s.tokens.default_audience or s.issuer,
                                  s.tokens.openid_on_client_credentials,
                                  fhir_audience=s.fhir_base_url if s.smart.enabled else None,
                                  backend_lifetime=s.smart.backend_token_lifetime)


def _authorization_code(d: GrantDeps) -> Grant:
    return AuthorizationCodeGrant(d.codes, d.tokens, d.user_tokens)


def _refresh_token(d: GrantDeps) -> Grant:
    return RefreshTokenGrant(d.tokens, d.user_tokens, d.settings.oidc.refresh_token_rotation, d.sessions,
                             d.client_rules, d.grace)


# grant_type -> how to build it (RFC 6749 §4.4, §4.1, §6).
GRANT_TYPES: Mapping[str, Callable[[GrantDeps], Grant]] = {
    ClientCredentialsGrant.grant_type: _client_credentials,
    AuthorizationCodeGrant.grant_type: _authorization_code,
    RefreshTokenGrant.grant_type: _refresh_token,
}


def build_grants(deps: GrantDeps, table: Mapping[str, Callable[[GrantDeps], Grant]] = GRANT_TYPES) -> dict[str, Grant]:
    """One grant per entry of `table`, keyed by its grant_type."""
    grants = {name: build(deps) for name, build in table.items()}
    for name, grant in grants.items():
        if grant.grant_type != name:
            raise ValueError(f"grant table entry {name!r} builds a {grant.grant_type!r} grant")
    return grants
