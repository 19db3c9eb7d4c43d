"""Red-team attacks on federation through the app (fake upstream behind the trusted client)."""

from __future__ import annotations

import jinja2
import pytest

from ostiary.server.policy.levels import MFA
from tests.protocol._fake_idp import FakeIdp
from tests.protocol._oidc_flow import audit_events, sqlite_only
from tests.protocol.test_federation import FakeFactor, audit, federated_app, id_token_after

__all__ = ["audit"]


async def test_rfc8176_a_trusted_upstreams_password_alone_does_not_skip_the_local_second_factor(
        database_url: str, audit: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: an upstream trusted for amr signs the user in with a password alone (amr ["pwd"]); that made
    two factor classes here (the upstream sign-in + its password), so the second factor this user enrolled
    was never asked and the ID token said mfa. Now the factor is asked, and then the sign-in is mfa."""
    sqlite_only(database_url)
    from ostiary.web import render

    partial = jinja2.DictLoader({"factor_fake.html": '<input name="code" autocomplete="one-time-code">'})
    monkeypatch.setattr(render._env, "loader", jinja2.ChoiceLoader([render._env.loader, partial]))
    idp = FakeIdp(sub="trusted-pwd", claims={"amr": ["pwd"], "email": "x@idp.example"})
    async with federated_app(database_url, idp, trust_amr=True) as running:
        alone = await id_token_after(running, idp)
        assert alone["amr"] == ["fed", "pwd"] and alone["acr"] != MFA
        (provisioned,) = audit_events(audit, "federation_provisioned")
        running.provider.factors["fake"] = FakeFactor({provisioned["sub"]})
        try:
            claims = await id_token_after(running, idp, create=False, factor_code="123456")
        finally:
            del running.provider.factors["fake"]
        assert claims["amr"] == ["fed", "pwd", "otp", "mfa"] and claims["acr"] == MFA
