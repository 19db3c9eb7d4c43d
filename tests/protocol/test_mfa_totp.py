"""Authenticator app (RFC 6238) on the account page and as a second factor: enrolment only after a correct
code, recovery codes shown once, credential changes only with a recent credential (else a new sign-in),
CSRF, each code once, throttled guesses, audit events."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from html import unescape
from typing import Any

import pytest
import sqlalchemy as sa

from ostiary.server.factors import FactorThrottled
from ostiary.server.mfa import totp
from ostiary.server.mfa.service import MfaService

from ._oidc_flow import audit_events, browser, csrf_of, is_page, make_rp, make_user, run_flow


def secret_on(html: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)
    assert match, html[:3000]
    return match.group(1).replace(" ", "")


def now_code(secret: str, offset: int = 0) -> str:
    return totp.code_at(secret, totp.step_at(time.time()) + offset)


def recovery_codes_on(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", html)


async def signed_in(running: Any, b: Any) -> Any:
    user = await make_user(running)
    cid, secret = await make_rp(running)
    await run_flow(b, cid, secret, user, scope="openid")
    return user


async def enrol(b: Any) -> tuple[str, list[str]]:
    """Set up the app through the account page; returns (secret, recovery codes)."""
    csrf = csrf_of((await b.get("/account")).text)
    r = await b.post("/account/totp/begin", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/account#totp"
    page = (await b.get("/account")).text
    secret = secret_on(page)
    r = await b.post("/account/totp/activate", data={"csrf_token": csrf, "code": now_code(secret)})
    assert r.status_code == 200, r.text
    codes = recovery_codes_on(r.text)
    assert len(codes) == 10
    return secret, codes


async def age_session(running: Any, user_id: str, seconds: int) -> None:
    async with running.provider.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE sessions SET auth_time = auth_time - :s WHERE user_id = :u"),
                           {"s": seconds, "u": user_id})


async def test_enrolment_shows_qr_secret_and_uri_and_activates_only_with_a_correct_code(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    async with browser(running) as b:
        user = await signed_in(running, b)
        page = (await b.get("/account")).text
        assert "Set up authenticator app" in page
        csrf = csrf_of(page)
        assert (await b.post("/account/totp/begin", data={"csrf_token": csrf})).status_code == 303
        page = (await b.get("/account")).text
        secret = secret_on(page)
        assert len(base64.b32decode(secret)) == 20
        assert re.search(r'<svg role="img" aria-label="QR code for your authenticator app"', page)
        uri = unescape(re.search(r'href="(otpauth://[^"]+)"', page).group(1))  # type: ignore[union-attr]
        assert uri.startswith(f"otpauth://totp/Ostiary:{user.username}?secret={secret}&issuer=Ostiary")
        for attr in ('autocomplete="one-time-code"', 'inputmode="numeric"', 'pattern="', '<label for="totp-code"'):
            assert attr in page
        assert await running.provider.mfa.has_totp(user.id) is False  # pending is not enrolled
        wrong = f"{(int(now_code(secret)) + 1) % 1_000_000:06d}"
        r = await b.post("/account/totp/activate", data={"csrf_token": csrf, "code": wrong})
        assert r.status_code == 303 and "totp_error=code" in r.headers["location"]
        assert 'role="alert"' in (await b.get(r.headers["location"])).text
        r = await b.post("/account/totp/activate", data={"csrf_token": csrf, "code": now_code(secret)})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert len(set(recovery_codes_on(r.text))) == 10
        assert await running.provider.mfa.has_totp(user.id)
        page = (await b.get("/account")).text
        assert "10 recovery codes left" in page and "totp-secret" not in page  # never shown again
    assert audit_events(caplog, "mfa_totp_enrolled") and audit_events(caplog, "mfa_recovery_codes_generated")
    assert audit_events(caplog, "mfa_totp_enrolment_failed")
    assert secret not in caplog.text


async def test_forms_need_the_account_csrf_value(running):
    async with browser(running) as b:
        user = await signed_in(running, b)
        for path in ("/account/totp/begin", "/account/totp/activate", "/account/totp/recovery-codes",
                     "/account/totp/remove"):
            assert is_page(await b.post(path, data={"code": "1"}), 403)
            assert is_page(await b.post(path, data={"csrf_token": "forged"}), 403)
        assert (await running.provider.mfa.status(user.id)).totp == "none"


async def test_not_signed_in_changes_nothing(running):
    async with browser(running) as b:
        r = await b.post("/account/totp/begin", data={"csrf_token": "x"})
        assert r.status_code == 200 and "not signed in" in r.text


async def test_a_credential_change_needs_a_credential_from_the_last_five_minutes(running):
    async with browser(running) as b:
        user = await signed_in(running, b)
        await enrol(b)
        await age_session(running, user.id, 301)
        csrf = csrf_of((await b.get("/account")).text)
        for path in ("/account/totp/remove", "/account/totp/recovery-codes", "/account/totp/begin"):
            r = await b.post(path, data={"csrf_token": csrf})
            assert r.status_code == 303 and r.headers["location"] == "/signin?return_to=/account&prompt=login"
        assert await running.provider.mfa.has_totp(user.id)


async def test_a_pending_secret_is_shown_only_with_a_recent_credential(running):
    async with browser(running) as b:
        user = await signed_in(running, b)
        csrf = csrf_of((await b.get("/account")).text)
        await b.post("/account/totp/begin", data={"csrf_token": csrf})
        await age_session(running, user.id, 301)
        page = (await b.get("/account")).text
        assert "totp-secret" not in page and "sign in again" in page


async def test_new_recovery_codes_replace_the_old_and_removal_turns_it_off(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    async with browser(running) as b:
        user = await signed_in(running, b)
        _, first = await enrol(b)
        csrf = csrf_of((await b.get("/account")).text)
        r = await b.post("/account/totp/recovery-codes", data={"csrf_token": csrf})
        second = recovery_codes_on(r.text)
        assert len(second) == 10 and not set(first) & set(second)
        mfa: MfaService = running.provider.mfa
        assert await mfa.verify_recovery_code(user.id, first[0]) is None
        assert await mfa.verify_recovery_code(user.id, second[0]) is not None
        r = await b.post("/account/totp/remove", data={"csrf_token": csrf})
        assert r.status_code == 303
        status = await mfa.status(user.id)
        assert (status.totp, status.recovery_codes_left) == ("none", 0)
        assert "Set up authenticator app" in (await b.get("/account")).text
    assert audit_events(caplog, "mfa_totp_removed")[-1]["recovery_codes_removed"] == 9


async def test_an_active_app_is_not_replaced_by_starting_again(running):
    async with browser(running) as b:
        user = await signed_in(running, b)
        secret, _ = await enrol(b)
        csrf = csrf_of((await b.get("/account")).text)
        await b.post("/account/totp/begin", data={"csrf_token": csrf})
        stored = await running.provider.mfa._store.totp(user.id)
        assert stored.active and stored.secret == secret


async def test_totp_proof_each_step_once_and_audited(running, caplog):
    """RFC 6238 §5.2: a verified code is not accepted again; RFC 8176 amr "otp"; possession."""
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    async with browser(running) as b:
        user = await signed_in(running, b)
        secret, _ = await enrol(b)
    factor = running.provider.factors["totp"]
    mfa: MfaService = running.provider.mfa
    code = now_code(secret, 1)  # the next step: the activation used the current one
    proof = await mfa.verify_totp(user.id, code)
    assert proof is not None and proof.amr == ("otp",) and proof.classes == frozenset({"possession"})
    assert await mfa.verify_totp(user.id, code) is None  # replayed
    assert await mfa.verify_totp(user.id, now_code(secret)) is None  # an earlier step than one used
    assert audit_events(caplog, "mfa_totp_used")[-1]["sub"] == user.id
    assert audit_events(caplog, "mfa_totp_failed")[-1]["reason"] == "code already used"
    assert await factor.enrolled(user.id) and await running.provider.factors["recovery_code"].enrolled(user.id)


async def test_two_concurrent_verifications_of_one_code_give_one_proof(running):
    """RFC 6238 §5.2 through the service: both pass the code check, the conditional UPDATE lets one win."""
    mfa: MfaService = running.provider.mfa
    for _ in range(3):
        async with browser(running) as b:
            user = await signed_in(running, b)
            secret, _ = await enrol(b)
        code = now_code(secret, 1)  # the next step: the activation used the current one
        proofs = await asyncio.gather(mfa.verify_totp(user.id, code), mfa.verify_totp(user.id, code))
        assert sum(p is not None for p in proofs) == 1


async def test_guesses_are_throttled_per_user_for_both_kinds_of_code(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    async with browser(running) as b:
        user = await signed_in(running, b)
        secret, codes = await enrol(b)
    mfa: MfaService = running.provider.mfa
    free = running.settings.oidc.login_attempts
    for _ in range(free):
        assert await mfa.verify_totp(user.id, "000000" if now_code(secret, 1) != "000000" else "111111") is None
    with pytest.raises(FactorThrottled):  # throttled: not even checked
        await mfa.verify_recovery_code(user.id, codes[0])
    with pytest.raises(FactorThrottled):
        await mfa.verify_totp(user.id, now_code(secret, 1))
    assert audit_events(caplog, "mfa_throttled")
    assert (await mfa.status(user.id)).recovery_codes_left == 10  # nothing was spent while throttled


async def test_recovery_code_is_a_one_time_possession_proof(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    async with browser(running) as b:
        user = await signed_in(running, b)
        _, codes = await enrol(b)
    mfa: MfaService = running.provider.mfa
    proof = await mfa.verify_recovery_code(user.id, codes[3].upper().replace("-", " "))
    assert proof is not None and proof.amr == ("otp",) and proof.classes == frozenset({"possession"})
    assert await mfa.verify_recovery_code(user.id, codes[3]) is None
    for hostile in ("", "x" * 100_000, "\x00" * 19, codes[4][:-1]):
        assert await mfa.verify_recovery_code(user.id, hostile) is None
    assert audit_events(caplog, "mfa_recovery_code_used")[-1]["left"] == 9
    assert codes[3] not in caplog.text


@pytest.mark.parametrize("name", ["totp", "recovery_code"])
async def test_factor_partials_have_labelled_code_fields(running, name):
    from ostiary.web.render import _env

    html = _env.get_template(f"factor_{name}.html").render(
        action="/interaction/x/factor", csrf_token="c", factor_name=name, ctx={"digits": 6, "max_length": 64})
    assert 'autocomplete="one-time-code"' in html and 'name="factor" value="' + name + '"' in html
    field = re.search(r'<input type="text" id="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert f'<label for="{field}"' in html and 'pattern="' in html
    if name == "totp":
        assert 'inputmode="numeric"' in html
