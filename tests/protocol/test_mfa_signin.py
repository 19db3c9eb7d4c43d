"""The authenticator app and recovery codes through the sign-in engine (issue 11 items 5 and 7): a client
sign-in with password + TOTP states acr mfa and amr pwd, otp, mfa (RFC 8176); a code is accepted once
(RFC 6238 §5.2), also across sign-ins; a recovery code signs in once; step-up by acr_values asks only the
code; the local sign-in to the account page asks the code too; an admin reset lets the password alone in."""

from __future__ import annotations

import logging

from ._oidc_flow import (
    audit_events,
    browser,
    csrf_of,
    id_token_at,
    make_rp,
    make_user,
    password_step,
    start_authorization,
)
from .test_mfa_totp import enrol, now_code
from .test_signin_levels import MFA, _factor


async def enrolled_user(running, b):
    """A user signed in with the password alone (before enrolling), then enrolled on the account page."""
    user = await make_user(running)
    r = await b.get("/signin", params={"return_to": "/account"})
    await password_step(b, r.headers["location"], user.username)
    secret, codes = await enrol(b)
    return user, secret, codes


async def test_client_sign_in_with_password_and_totp_states_mfa(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    cid, secret = await make_rp(running, skip_consent=True)
    async with browser(running) as b:
        user, seed, _ = await enrolled_user(running, b)
    async with browser(running) as b:
        path, verifier = await start_authorization(b, cid)
        await password_step(b, path, user.username)
        page = (await b.get(path)).text
        assert 'id="factor-totp-code"' in page and 'id="factor-recovery-code"' in page
        code = now_code(seed, 1)  # the next step: the activation spent the current one
        r = await _factor(b, path, code=code, factor="totp")
        assert r.status_code == 303 and b.cookie("ostiary_session")
        claims = await id_token_at(b, path, cid, secret, verifier)
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp", "mfa"]
    async with browser(running) as b:  # the same code in another sign-in (a phished or shoulder-surfed code)
        path, _ = await start_authorization(b, cid)
        await password_step(b, path, user.username)
        r = await _factor(b, path, code=code, factor="totp")
        assert r.status_code == 400 and "not accepted" in r.text and b.cookie("ostiary_session") is None
    assert audit_events(caplog, "mfa_totp_failed")[-1]["reason"] == "code already used"


async def test_recovery_code_signs_in_once(running):
    cid, secret = await make_rp(running, skip_consent=True)
    async with browser(running) as b:
        user, _, codes = await enrolled_user(running, b)
    for attempt in range(2):
        async with browser(running) as b:
            path, verifier = await start_authorization(b, cid)
            await password_step(b, path, user.username)
            page = await b.get(path)
            r = await b.post(path + "/factor", data={"csrf_token": csrf_of(page.text), "factor": "recovery_code",
                                                     "recovery_code": codes[0]})
            if attempt:
                assert r.status_code == 400 and b.cookie("ostiary_session") is None
                continue
            assert r.status_code == 303
            claims = await id_token_at(b, path, cid, secret, verifier)
            assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp", "mfa"]


async def test_step_up_by_acr_values_asks_only_the_code(running):
    cid, secret = await make_rp(running, skip_consent=True)
    async with browser(running) as b:
        _, seed, _ = await enrolled_user(running, b)  # this browser's session: password only
        path, verifier = await start_authorization(b, cid, acr_values=MFA)
        page = (await b.get(path)).text
        assert 'name="password"' not in page and 'id="factor-totp-code"' in page
        assert (await _factor(b, path, code=now_code(seed, 1), factor="totp")).status_code == 303
        claims = await id_token_at(b, path, cid, secret, verifier)
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp", "mfa"]


async def test_account_sign_in_asks_the_code_and_admin_reset_lets_the_password_alone_in(running):
    async with browser(running) as b:
        user, seed, _ = await enrolled_user(running, b)
    async with browser(running) as b:
        r = await b.get("/signin", params={"return_to": "/account"})
        path = r.headers["location"]
        await password_step(b, path, user.username)
        assert "You are not signed in" in (await b.get("/account")).text
        assert (await _factor(b, path, code=now_code(seed, 1), factor="totp")).status_code == 303
        assert (await b.get(path)).headers["location"] == "/account"
        assert "Authenticator app" in (await b.get("/account")).text
        removed, codes, ended = await running.provider.mfa.reset(user.id)
        assert (removed, codes, ended) == (True, 10, 2)  # both browsers' sessions
        assert "You are not signed in" in (await b.get("/account")).text  # the session ended
    async with browser(running) as b:
        r = await b.get("/signin", params={"return_to": "/account"})
        path = r.headers["location"]
        await password_step(b, path, user.username)
        assert (await b.get(path)).headers["location"] == "/account"
