"""Red-team attacks on federation through the app (fake upstream behind the trusted client)."""

from __future__ import annotations

import jinja2
import pytest

from ostiary.server.policy.levels import MFA
from tests.protocol._fake_idp import FakeIdp
from tests.protocol._oidc_flow import audit_events, browser, csrf_of, make_rp, sqlite_only
from tests.protocol.test_federation import (
    FakeFactor,
    audit,
    federated_app,
    id_token_after,
    to_login_page,
    upstream_sign_in,
)

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


@pytest.mark.parametrize("claims", [{"sub": "upstream\x00user"}, {"name": "Upstream\x00User"},
                                    {"sub": "up\u202euser"}])
async def test_nul_or_controls_in_upstream_claims_are_refused_cleanly(database_url: str, claims: dict) -> None:
    """Attack: an upstream's sub or profile with NUL (PostgreSQL refuses it in text) or bidi controls;
    the sign-in fails or goes on cleanly, never a 500."""
    idp = FakeIdp(sub="nul-test", tamper=lambda c: {**c, **claims})
    idp.claims = {"email": "x@idp.example", **{k: v for k, v in claims.items() if k != "sub"}}
    async with federated_app(database_url, idp) as running:
        cid, _ = await make_rp(running)
        b = browser(running)
        r, _ = await upstream_sign_in(b, idp, await to_login_page(b, cid))
        assert r.status_code < 500, r.text[:500]
        if r.status_code == 303 and r.headers["location"] == "/federation/link":
            choice = await b.get("/federation/link")
            r = await b.post("/federation/link", data={"csrf_token": csrf_of(choice.text), "choice": "create"})
            assert r.status_code < 500, r.text[:500]
