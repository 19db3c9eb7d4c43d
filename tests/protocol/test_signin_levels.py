"""Issue 11 item 7: levels (acr) and methods (amr) of a sign-in, second factors through the engine's
contract (server.factors.SecondFactor in provider.factors), and step-up.

Specs: OIDC Core §3.1.2.1 (acr_values voluntary, prompt=login, max_age), §5.5.1.1 (essential acr),
RFC 8176 (amr values), OpenID Connect Core Error Code unmet_authentication_requirements.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

from ostiary.config import SigninSettings
from ostiary.server.credentials import digest
from ostiary.store.identity import Session

from ._factors import CODE, FakeFactor, registered
from ._oidc_flow import (
    REDIRECT,
    app_for,
    audit_events,
    browser,
    csrf_of,
    decode_jwt,
    id_token_at,
    make_rp,
    make_user,
    password_step,
    pkce,
    query_of,
    sign_in_locally,
    sqlite_only,
    start_authorization,
)

MFA = "urn:ostiary:acr:mfa"


@contextlib.asynccontextmanager
async def _signing_in(running, *, enrolled: bool = True) -> AsyncIterator[SimpleNamespace]:
    """A user, a first-party client, the fake factor (enrolled or not) and a browser."""
    user = await make_user(running)
    cid, secret = await make_rp(running, skip_consent=True)
    factor = FakeFactor()
    if enrolled:
        factor.users.add(user.id)
    with registered(running, factor):
        async with browser(running) as b:
            yield SimpleNamespace(user=user, cid=cid, secret=secret, factor=factor, b=b)


async def _factor(b, path: str, code: str = CODE, factor: str = "fake"):
    page = await b.get(path)
    assert 'action="' + path + '/factor"' in page.text, page.text[:1500]
    return await b.post(path + "/factor", data={"csrf_token": csrf_of(page.text), "factor": factor, "code": code})


async def test_enrolled_second_factor_is_asked_at_every_sign_in_and_password_alone_signs_nobody_in(running):
    async with _signing_in(running) as t:
        user, cid, secret, b = t.user, t.cid, t.secret, t.b
        path, verifier = await start_authorization(b, cid)
        assert await password_step(b, path, user.username) == path
        assert b.cookie("ostiary_session") is None  # the password alone made no session
        page = await b.get(path)
        # The engine's page: the factor's own partial with its challenge() as ctx, labelled code input.
        assert f"fake for {user.id[:4]}" in page.text and 'autocomplete="one-time-code"' in page.text
        assert 'inputmode="numeric"' in page.text and 'name="password"' not in page.text
        r = await _factor(b, path, code="000000")
        assert r.status_code == 400 and "not accepted" in r.text and b.cookie("ostiary_session") is None
        r = await _factor(b, path)
        assert r.status_code == 303 and b.cookie("ostiary_session")
        claims = await id_token_at(b, path, cid, secret, verifier)
    # RFC 8176: pwd + otp, and mfa for two factor classes.
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == MFA


async def test_factor_answer_when_no_second_factor_is_due_is_not_verified(running):
    """The attack: posting a code to /factor before (or without) a first credential."""
    user = await make_user(running)
    cid, _ = await make_rp(running)
    factor = FakeFactor()
    factor.users.add(user.id)
    with registered(running, factor):
        async with browser(running) as b:
            path, _ = await start_authorization(b, cid)
            page = await b.get(path)
            r = await b.post(path + "/factor", data={"csrf_token": csrf_of(page.text), "factor": "fake",
                                                     "code": CODE})
            assert r.status_code == 303 and r.headers["location"] == path
            assert factor.verified == [] and b.cookie("ostiary_session") is None
            # A factor the user has not enrolled, or an unknown one, is refused without verifying.
            await password_step(b, path, user.username)
            r = await _factor(b, path, factor="nonexistent")
            assert r.status_code == 400 and factor.verified == []
            r = await b.post(path + "/factor", data={"factor": "fake", "code": CODE})  # no CSRF value
            assert r.status_code == 403 and factor.verified == []


async def _password_session_then_enrol(b, cid: str, secret: str, user, factor: FakeFactor) -> None:
    """A password session (the ID token says so), then the user enrols the factor."""
    path, verifier = await start_authorization(b, cid)
    await password_step(b, path, user.username)
    assert (await id_token_at(b, path, cid, secret, verifier))["acr"] == "urn:ostiary:acr:password"
    factor.users.add(user.id)


async def test_step_up_by_acr_values_asks_only_the_missing_factor(running):
    """A higher level asked for on an existing session re-authenticates only the missing factor."""
    async with _signing_in(running, enrolled=False) as t:
        user, cid, secret, factor, b = t.user, t.cid, t.secret, t.factor, t.b
        await _password_session_then_enrol(b, cid, secret, user, factor)
        old_cookie = b.cookie("ostiary_session")
        path, verifier = await start_authorization(b, cid, acr_values=MFA)
        page = await b.get(path)
        assert 'name="password"' not in page.text and "/factor" in page.text
        assert (await _factor(b, path)).status_code == 303
        assert b.cookie("ostiary_session") != old_cookie  # upgraded: a new cookie value
        claims = await id_token_at(b, path, cid, secret, verifier)
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp", "mfa"]


async def test_prompt_login_re_runs_every_factor_the_level_needs(running):
    async with _signing_in(running) as t:
        user, cid, secret, b = t.user, t.cid, t.secret, t.b
        path, verifier = await start_authorization(b, cid)
        await password_step(b, path, user.username)
        await _factor(b, path)
        await id_token_at(b, path, cid, secret, verifier)
        for extra in ({"prompt": "login"}, {"max_age": "0"}):
            path, verifier = await start_authorization(b, cid, **extra)
            await password_step(b, path, user.username)
            assert (await _factor(b, path)).status_code == 303
            assert (await id_token_at(b, path, cid, secret, verifier))["acr"] == MFA


async def test_acr_values_supported_each_level_is_reached_and_stated(running):
    """acr_values (voluntary): met when the user can; otherwise the level achieved is stated."""
    user = await make_user(running)
    cid, secret = await make_rp(running, skip_consent=True)
    otp, key = FakeFactor("fake"), FakeFactor("key", phishing_resistant=True, hardware_bound=True, amr=("hwk",))
    with registered(running, otp, key):
        async with browser(running) as b:
            # No factor enrolled: mfa cannot be reached, the sign-in goes on at the password level.
            path, verifier = await start_authorization(b, cid, acr_values=MFA)
            await password_step(b, path, user.username)
            assert (await id_token_at(b, path, cid, secret, verifier))["acr"] == "urn:ostiary:acr:password"
            otp.users.add(user.id)
            key.users.add(user.id)
            for wanted, used, stated in (("phr", "key", "phrh"), ("phrh", "key", "phrh"), (MFA, "fake", MFA)):
                path, verifier = await start_authorization(b, cid, acr_values=wanted, prompt="login")
                await password_step(b, path, user.username)
                assert (await _factor(b, path, factor=used)).status_code == 303
                assert (await id_token_at(b, path, cid, secret, verifier))["acr"] == stated, wanted


async def test_oidc_core_5_5_1_1_essential_acr_that_cannot_be_met_is_unmet_authentication_requirements(
        running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    user = await make_user(running)
    cid, secret = await make_rp(running, skip_consent=True)
    essential = {"id_token": {"acr": {"essential": True, "values": [MFA]}}}
    async with browser(running) as b:
        # A value this server does not know: failed before any page.
        unknown = {"id_token": {"acr": {"essential": True, "values": ["urn:example:loa:9"]}}}
        r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code",
                                              "scope": "openid", "state": "s", "claims": json.dumps(unknown),
                                              "code_challenge": pkce()[1], "code_challenge_method": "S256"})
        assert query_of(r.headers["location"])["error"] == "unmet_authentication_requirements"
        # mfa, for a user with no second factor: failed after the password, never a password-only token.
        path, _ = await start_authorization(b, cid, claims=json.dumps(essential))
        await password_step(b, path, user.username)
        r = await b.get(path)
        assert query_of(r.headers["location"])["error"] == "unmet_authentication_requirements"
    assert audit_events(caplog, "authentication_failed")
    factor = FakeFactor()
    factor.users.add(user.id)
    with registered(running, factor):
        async with browser(running) as b:
            path, verifier = await start_authorization(b, cid, claims=json.dumps(essential))
            await password_step(b, path, user.username)
            await _factor(b, path)
            assert (await id_token_at(b, path, cid, secret, verifier))["acr"] == MFA


async def _unmet_after_password(b, cid: str, user) -> None:
    """The level needed is beyond the user's factors: the client is told after the password, no code."""
    path, _ = await start_authorization(b, cid)
    await password_step(b, path, user.username)
    r = await b.get(path)
    assert query_of(r.headers["location"])["error"] == "unmet_authentication_requirements"


async def test_client_minimum_acr_is_admin_only_and_enforced(running):
    user = await make_user(running)
    cid, _ = await make_rp(running, minimum_acr=MFA)
    async with browser(running) as b:
        await _unmet_after_password(b, cid, user)
    # A self-registering client cannot set it (admin-only metadata).
    r = await running.http.post("/register", json={"redirect_uris": [REDIRECT],
                                                   "minimum_acr": "urn:ostiary:acr:password"},
                                headers={"Authorization": "Bearer initial-token-for-tests"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"
    assert re.search("minimum_acr", r.json()["error_description"])


async def test_a_session_from_before_levels_counts_as_one_password_proof(running):
    """Sessions stored before this change have amr ["pwd"] and no acr: the ID token says password."""
    user = await make_user(running)
    cid, secret = await make_rp(running, skip_consent=True)
    cookie = "old-session-" + user.id
    await running.provider.sessions.create(Session(digest=digest(cookie), sid="old-sid-" + user.id[:8],
                                                   user_id=user.id, auth_time=int(time.time()) - 60,
                                                   expires_at=int(time.time()) + 3600))
    async with browser(running) as b:
        b.cookies.set("ostiary_session", cookie, domain="127.0.0.1", path="/")
        location, verifier = await start_authorization(b, cid)  # signed in, no consent: the code at once
        code = query_of(location)["code"]
        r = await b.post("/token", data={"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": REDIRECT, "code_verifier": verifier}, auth=(cid, secret))
        claims = (await decode_jwt(b, r.json()["id_token"]))[1]
    assert claims["acr"] == "urn:ostiary:acr:password" and claims["amr"] == ["pwd"]


async def test_global_required_acr_applies_to_applications_not_to_the_local_sign_in(database_url):
    sqlite_only(database_url)
    async with app_for(database_url, signin=SigninSettings(required_acr=MFA)) as strict:
        user = await make_user(strict)
        cid, _ = await make_rp(strict, skip_consent=True)
        async with browser(strict) as b:
            await _unmet_after_password(b, cid, user)
            # The account page stays reachable with a password: that is where factors are enrolled.
            _, r = await sign_in_locally(b, user.username, "/account")
            assert r.headers["location"] == "/account"


async def test_oidc_core_3_1_2_1_prompt_none_when_a_second_factor_is_due_is_login_required(running):
    """A password session of a user who has enrolled a factor since: no page may be shown, so no code."""
    async with _signing_in(running, enrolled=False) as t:
        user, cid, secret, factor, b = t.user, t.cid, t.secret, t.factor, t.b
        await _password_session_then_enrol(b, cid, secret, user, factor)
        location, _ = await start_authorization(b, cid, prompt="none")
        assert query_of(location)["error"] == "login_required"
