"""Issue 9 item 12: users can carry the operator's custom profile claims (oidc.custom_claims, such as
`roles`), released to resource servers in the access token when `profile` is granted."""

from __future__ import annotations

import pytest

from ostiary.config import ConfigError, OidcSettings
from ostiary.errors import InvalidRequest
from tests.conftest import RunningApp, settings_for

from ._oidc_flow import app_for, browser, decode_jwt, make_user, tokens_for


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: claims, not storage."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


async def test_custom_claim_is_refused_unless_the_operator_configured_it(running: RunningApp) -> None:
    with pytest.raises(InvalidRequest, match="roles"):
        await make_user(running, roles=["admin"])


async def test_configured_roles_reach_the_access_token_with_profile_only(database_url: str) -> None:
    async with app_for(database_url, oidc=OidcSettings(custom_claims=("roles",))) as app:
        user = await make_user(app, roles=["admin", "viewer"])
        async with browser(app) as b:
            _, body = await tokens_for(app, b, user, scope="openid profile", client_scope="openid profile")
            _, claims = await decode_jwt(app.http, body["access_token"])
            assert claims["roles"] == ["admin", "viewer"]
        async with browser(app) as b:  # no profile consented: the roles stay home
            _, body = await tokens_for(app, b, user, scope="openid email", client_scope="openid email")
            _, claims = await decode_jwt(app.http, body["access_token"])
            assert "roles" not in claims


def test_server_set_claims_cannot_be_made_custom() -> None:
    """The attack: an operator typo letting a user record carry the patient in context or a client_id."""
    for name in ("patient", "fhirUser", "client_id", "scope", "sub"):
        with pytest.raises(ConfigError, match=name):
            settings_for("sqlite:///unused.db", oidc=OidcSettings(custom_claims=(name,)))
