"""Red-team attacks on the sign-in engine (issue 11), each a test named for the rule it checks.

Rules: a second factor can never be skipped by a session made elsewhere or earlier (docs/sign-in.md,
"Levels and methods"); RFC 6238 §5.2 (a code once); OIDC Core §3.1.2.1 (re-authentication).
"""

from __future__ import annotations

import asyncio
import logging

from ._factors import CODE
from ._oidc_flow import (
    audit_events,
    browser,
    csrf_of,
    make_rp,
    make_user,
    password_step,
    sign_in_locally,
    start_authorization,
)
from .test_mfa_signin import enrolled_user
from .test_mfa_totp import now_code, recovery_codes_on, secret_on
from .test_signin_levels import _signing_in


async def test_enrolling_a_second_factor_ends_the_other_password_only_sessions(running, caplog):
    """Attack: a phished password signs in (password only, no factor yet); the owner then sets up an
    authenticator app to lock the intruder out. The intruder's older session must not survive it: it
    would otherwise keep the account page (remove the new app within 5 minutes of its sign-in, revoke
    applications) and the developer portal, skipping the second factor the account now has."""
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    user = await make_user(running)
    async with browser(running) as intruder, browser(running) as owner:
        await sign_in_locally(intruder, user.username)
        assert (await intruder.get("/account")).status_code == 200
        intruder_csrf = csrf_of((await intruder.get("/account")).text)
        await sign_in_locally(owner, user.username)
        csrf = csrf_of((await owner.get("/account")).text)
        await owner.post("/account/totp/begin", data={"csrf_token": csrf})
        secret = secret_on((await owner.get("/account")).text)
        r = await owner.post("/account/totp/activate", data={"csrf_token": csrf, "code": now_code(secret)})
        assert r.status_code == 200 and len(recovery_codes_on(r.text)) == 10
        # the owner's own session, which just proved the app, goes on
        assert "recovery codes left" in (await owner.get("/account")).text
        # the intruder's is over: no account page, no removal of the new app, no portal
        page = await intruder.get("/account")
        assert "not signed in" in page.text
        r = await intruder.post("/account/totp/remove", data={"csrf_token": intruder_csrf})
        assert "not signed in" in r.text
        assert await running.provider.mfa.has_totp(user.id)
        assert intruder.cookie("ostiary_session") and await running.provider.flow.session(
            intruder.cookie("ostiary_session")) is None  # the portal and launcher see nobody either
    assert audit_events(caplog, "mfa_totp_enrolled")[-1]["sessions_ended"] == 1


async def test_a_password_reset_voids_the_password_step_of_a_sign_in_under_way(running, caplog):
    """Attack: a phished password is entered in a sign-in that stops at the second factor; the owner
    resets the password; the intruder, still within the interaction's 15 minutes, then gets one code
    (phished, or guessed). The old password's proof must not count any more: the engine asks for the
    password again instead of signing the intruder in."""
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    async with _signing_in(running) as s:
        intruder, user, factor = s.b, s.user, s.factor
        path, _ = await start_authorization(intruder, s.cid)
        await password_step(intruder, path, user.username)
        page = await intruder.get(path)
        assert "/factor" in page.text  # the second factor is due
        await asyncio.sleep(1.1)  # the reset comes at least a second later
        p = running.provider
        await p.flow.user_service.store_password_hash(user.id, await p.flow.user_service.hash_password(
            "a new passphrase nobody phished"))
        r = await intruder.post(path + "/factor", data={"csrf_token": csrf_of(page.text), "factor": "fake",
                                                        "code": CODE})
        assert r.status_code == 303 and intruder.cookie("ostiary_session") is None
        page = await intruder.get(path)
        assert 'name="password"' in page.text and "/factor" not in page.text
        assert factor.verified == []  # the code was not even checked
    assert audit_events(caplog, "signin_proofs_outdated")


async def test_a_throttled_code_is_answered_429_with_the_wait_not_as_a_wrong_code(running):
    """Codes are throttled per user for up to 15 minutes (a thief with the password guessing): the
    owner's right code in that time is not checked, and the page must say to wait (RFC 6585 §4, RFC
    9110 §10.2.3 Retry-After), not that the code was wrong, or the owner blames their phone's clock."""
    async with browser(running) as b:
        user, seed, _ = await enrolled_user(running, b)
    wrong = "000000" if now_code(seed, 1) != "000000" else "111111"
    async with browser(running) as b:
        path, _ = await start_authorization(b, (await make_rp(running, skip_consent=True))[0])
        await password_step(b, path, user.username)
        for _ in range(running.settings.oidc.login_attempts + 1):
            page = await b.get(path)
            r = await b.post(path + "/factor", data={"csrf_token": csrf_of(page.text), "factor": "totp",
                                                     "code": wrong})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "Try again in" in r.text and "not accepted" not in r.text
        assert b.cookie("ostiary_session") is None


async def test_a_pending_authenticator_secret_is_shown_only_to_the_browser_that_started_the_set_up(running):
    """Attack: an intruder signed in with a phished password (within 5 minutes: "recent") reloads the
    account page while the owner sets up an authenticator app, reads the pending secret (QR code and
    text) and so holds the second factor the owner is about to turn on. The secret is for the browser
    that asked for it only; another session of the same user sees that a set-up is under way, no more,
    and cannot activate it."""
    user = await make_user(running)
    async with browser(running) as intruder, browser(running) as owner:
        await sign_in_locally(intruder, user.username)
        await sign_in_locally(owner, user.username)
        csrf = csrf_of((await owner.get("/account")).text)
        await owner.post("/account/totp/begin", data={"csrf_token": csrf})
        secret = secret_on((await owner.get("/account")).text)
        page = (await intruder.get("/account")).text
        assert secret not in page and secret_grouped(secret) not in page and "otpauth://" not in page
        r = await intruder.post("/account/totp/activate", data={"csrf_token": csrf_of(page),
                                                                "code": now_code(secret)})
        assert r.status_code == 303 and not await running.provider.mfa.has_totp(user.id)
        r = await owner.post("/account/totp/activate", data={"csrf_token": csrf, "code": now_code(secret)})
        assert r.status_code == 200 and await running.provider.mfa.has_totp(user.id)


def secret_grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
