"""Issue 11 item 9: password reset by a mailed link (docs/sign-in.md "Password reset and email verification").

Mail goes through a real local SMTP server (aiosmtpd). Rules and the attacks they stop: the link is built
from the issuer (a hostile Host header cannot receive it), it goes only to a verified address, the answer
never tells whether an account exists, the link is single-use (also twice at once, SQLite and PostgreSQL),
expires, is stored as a digest, and a reset ends sessions and grants but never signs anyone in.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ostiary.config import SmtpSettings, ThrottleSettings
from tests._smtp import Inbox, link_in, smtp_server
from tests.conftest import ISSUER, RunningApp, basic, settings_for, start_app

from ._oidc_flow import PASSWORD, Browser, audit_events, browser, csrf_of, exchange, make_rp, make_user, run_flow

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as box:
        yield box


def smtp_settings(inbox: Inbox, **changes: Any) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=inbox.port, security="none", from_address="ostiary@example.org",
                        timeout=5.0, **changes)


@pytest.fixture(scope="module")
async def running(database_url: str, inbox: Inbox) -> AsyncIterator[RunningApp]:
    settings = settings_for(database_url, smtp=smtp_settings(inbox),
                            throttle=ThrottleSettings(client_auth_failures=100_000, open_registrations=100_000))
    async for r in start_app(settings):
        yield r


@pytest.fixture(autouse=True)
def _audit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ostiary.audit")


async def ask(running: RunningApp, b: Browser, identifier: str, **headers: str) -> httpx.Response:
    form = await b.get("/password/forgot")
    assert form.status_code == 200, form.text
    r = await b.post("/password/forgot", data={"csrf_token": csrf_of(form.text), "identifier": identifier},
                     headers=headers)
    await running.provider.mail.links.drain()
    return r


async def set_password(b: Browser, link: str, password: str = NEW_PASSWORD,
                       confirm: str | None = None) -> httpx.Response:
    path = urlsplit(link)
    form = await b.get(path.path + "?" + path.query)
    assert form.status_code == 200, form.text
    token = parse_qs(path.query)["token"][0]
    return await b.post("/password/reset", data={"csrf_token": csrf_of(form.text), "token": token,
                                                 "password": password,
                                                 "password_confirm": password if confirm is None else confirm})


def text_of(r: httpx.Response) -> str:
    """The page without its per-response nonce (compare two answers)."""
    return re.sub(r'nonce="[^"]*"', "", r.text)


async def test_reset_link_goes_to_the_verified_address_and_is_built_from_the_issuer(
        running: RunningApp, inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    # The attack: a Host header naming the attacker's server, so the victim's mail carries a link there.
    user = await make_user(running, email="reset-host@example.org")
    inbox.clear()
    async with browser(running) as b:
        r = await ask(running, b, user.username, host="evil.example")
    assert r.status_code == 200
    (mail,) = inbox.mails
    assert inbox.envelopes[0][1] == ["reset-host@example.org"]
    assert mail["To"] == "reset-host@example.org" and mail["From"] == "ostiary@example.org"
    link = link_in(mail)
    assert link.startswith(ISSUER + "/password/reset?token=") and "evil" not in mail.as_string()
    assert user.username in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Stored as a digest only: the secret of the link is in no row.
    token = parse_qs(urlsplit(link).query)["token"][0]
    stored = await running.provider.mail.links.store.peek(hashlib.sha256(token.encode()).hexdigest(), "reset", 0)
    assert stored is not None and token not in repr(stored)
    assert [e["outcome"] for e in audit_events(caplog, "password_reset_requested")] == ["sent"]
    assert audit_events(caplog, "email_sent")[0]["purpose"] == "reset"


async def test_by_email_address_case_insensitive(running: RunningApp, inbox: Inbox) -> None:
    await make_user(running, email="Mixed.Case@example.org")
    inbox.clear()
    async with browser(running) as b:
        await ask(running, b, "mixed.case@EXAMPLE.org")
    assert [m["To"] for m in inbox.mails] == ["Mixed.Case@example.org"]


async def test_same_answer_and_no_mail_for_unknown_unverified_and_disabled(
        running: RunningApp, inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    # No account enumeration: the page is byte-for-byte the same (less its nonce) whatever was typed.
    known = await make_user(running, email="known@example.org")
    unverified = await make_user(running, email="unverified@example.org", email_verified=False)
    disabled = await make_user(running, email="disabled@example.org")
    await running.provider.user_service.set_disabled(disabled.username, True)
    inbox.clear()
    async with browser(running) as b:
        answers = [await ask(running, b, name) for name in (
            known.username, "nobody-at-all", "nobody@example.org", unverified.username, "unverified@example.org",
            disabled.username)]
    assert {a.status_code for a in answers} == {200}
    assert len({text_of(a) for a in answers}) == 1
    assert [m["To"] for m in inbox.mails] == ["known@example.org"]
    outcomes = [e["outcome"] for e in audit_events(caplog, "password_reset_requested")]
    assert outcomes == ["sent", "no_account", "no_account", "unverified", "unverified", "not_allowed"]


async def test_reset_sets_the_password_ends_sessions_and_refresh_tokens_and_does_not_sign_in(
        running: RunningApp, inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    user = await make_user(running, email="full@example.org")
    cid, secret = await make_rp(running)
    async with browser(running) as victim:
        flow = await run_flow(victim, cid, secret, user)
        tokens = (await exchange(victim, flow)).json()
        assert "Signed in as" in (await victim.get("/account")).text
        inbox.clear()
        async with browser(running) as b:
            await ask(running, b, user.username)
            done = await set_password(b, link_in(inbox.mails[0]))
            assert done.status_code == 200 and "Your password is changed" in done.text
            assert "set-cookie" not in done.headers or "ostiary_session" not in done.headers["set-cookie"]
            assert "not signed in" in (await b.get("/account")).text  # never signed in by a reset
        assert "not signed in" in (await victim.get("/account")).text  # every session ended
        refresh = await victim.post("/token", headers=basic(cid, secret),
                                    data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    service = running.provider.user_service
    assert (await service.login(user.username, NEW_PASSWORD, "10.9.9.1")).user is not None
    assert (await service.login(user.username, PASSWORD, "10.9.9.2")).user is None
    (done_event,) = audit_events(caplog, "password_reset_completed")
    assert done_event["sub"] == user.id and done_event["tokens_kept"] is False


async def test_link_is_single_use_and_other_links_die_with_it(running: RunningApp, inbox: Inbox) -> None:
    user = await make_user(running, email="once@example.org")
    inbox.clear()
    async with browser(running) as b:
        await ask(running, b, user.username)
        await ask(running, b, user.username)
        first, second = (link_in(m) for m in inbox.mails)
        assert (await set_password(b, first)).status_code == 200
        again = await b.get(urlsplit(first).path + "?" + urlsplit(first).query)
        assert again.status_code == 400 and "cannot be used" in again.text
        assert (await b.get(urlsplit(second).path + "?" + urlsplit(second).query)).status_code == 400


async def test_administrator_setting_a_password_voids_pending_reset_links(
        running: RunningApp, inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    # The attack: a link mailed before the administrator set a new password (say, for an account taken
    # over) still chose the password afterwards, for whoever had the mailbox or the link, until it expired.
    user = await make_user(running, email="admin-set@example.org")
    other = await make_user(running, email="admin-set-other@example.org")
    inbox.clear()
    async with browser(running) as b:
        await ask(running, b, user.username)
        await ask(running, b, other.username)
        link, other_link = (link_in(m) for m in inbox.mails)
        await running.provider.user_service.set_password(user.username, "set by the administrator")
        stale = await b.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert stale.status_code == 400 and "cannot be used" in stale.text
        assert (await set_password(b, other_link)).status_code == 200  # only that user's links
    service = running.provider.user_service
    assert (await service.login(user.username, "set by the administrator", "10.9.8.1")).user is not None
    (event,) = audit_events(caplog, "password_set_by_administrator")
    assert event["sub"] == user.id and event["reset_links_voided"] == 1


async def test_expired_link_is_refused(running: RunningApp) -> None:
    user = await make_user(running, email="late@example.org")
    link = await running.provider.mail.links.issue("reset", user, "late@example.org", -1, "/password/reset")
    async with browser(running) as b:
        r = await b.get(link.removeprefix(ISSUER))
        assert r.status_code == 400 and "cannot be used" in r.text


async def test_weak_or_mismatched_password_does_not_use_up_the_link(running: RunningApp, inbox: Inbox) -> None:
    user = await make_user(running, email="weak@example.org")
    inbox.clear()
    async with browser(running) as b:
        await ask(running, b, user.username)
        link = link_in(inbox.mails[0])
        short = await set_password(b, link, "short")
        assert short.status_code == 400 and "at least 8 characters" in short.text
        differ = await set_password(b, link, NEW_PASSWORD, confirm=NEW_PASSWORD + "x")
        assert differ.status_code == 400 and "differ" in differ.text
        assert (await set_password(b, link)).status_code == 200


async def test_concurrent_uses_of_one_link_one_wins(running: RunningApp, inbox: Inbox) -> None:
    # SECURITY-CHECKLIST "twice at once": a reset link is single-use under 20 parallel submissions.
    user = await make_user(running, email="race@example.org")
    inbox.clear()
    async with browser(running) as b:
        await ask(running, b, user.username)
        link = link_in(inbox.mails[0])
        form = await b.get(urlsplit(link).path + "?" + urlsplit(link).query)
        data = {"csrf_token": csrf_of(form.text), "token": parse_qs(urlsplit(link).query)["token"][0],
                "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
        answers = await asyncio.gather(*(b.post("/password/reset", data=data) for _ in range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1 and set(statuses) <= {200, 400, 429}, statuses


async def test_keep_refresh_tokens_setting_ends_sessions_only(database_url: str, inbox: Inbox) -> None:
    settings = settings_for(database_url, smtp=smtp_settings(inbox, keep_refresh_tokens=True))
    async for node in start_app(settings):
        user = await make_user(node, email="keep@example.org")
        cid, secret = await make_rp(node)
        async with browser(node) as victim:
            tokens = (await exchange(victim, await run_flow(victim, cid, secret, user))).json()
            inbox.clear()
            await ask(node, victim, user.username)
            assert (await set_password(victim, link_in(inbox.mails[0]))).status_code == 200
            assert "not signed in" in (await victim.get("/account")).text
            refresh = await victim.post("/token", data={"grant_type": "refresh_token",
                                                        "refresh_token": tokens["refresh_token"]},
                                        headers=basic(cid, secret))
            assert refresh.status_code == 200, refresh.text


async def test_mails_per_account_are_throttled_silently(running: RunningApp, inbox: Inbox,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    # Mail bombing: a stranger asking again and again fills nobody's inbox, and learns nothing.
    user = await make_user(running, email="bomb@example.org")
    inbox.clear()
    answers = []
    for _ in range(5):
        async with browser(running) as b:  # from five addresses
            answers.append(await ask(running, b, user.username))
    assert {a.status_code for a in answers} == {200} and len({text_of(a) for a in answers}) == 1
    assert len(inbox.mails) == 3
    assert [e["outcome"] for e in audit_events(caplog, "password_reset_requested")][-2:] == ["throttled"] * 2


async def test_requests_per_client_address_are_throttled(running: RunningApp) -> None:
    async with browser(running) as b:
        answers = [await ask(running, b, f"nobody-{i}") for i in range(12)]
    assert answers[0].status_code == 200 and answers[-1].status_code == 429
    assert int(answers[-1].headers["retry-after"]) >= 1


@pytest.mark.parametrize("identifier", [
    "x" * 5000,  # oversized
    "known-crlf@example.org\r\nBcc: attacker@evil.example",  # header injection
    "known-crlf@example.org\nBcc: attacker@evil.example",
    "known-crlf@example.org, attacker@evil.example",
    "known-crlf@example.org\x00",  # refused by the form parser (PostgreSQL refuses NUL in text): 400 for any name
])
async def test_hostile_identifier_gets_the_same_page_and_no_mail(running: RunningApp, inbox: Inbox,
                                                                 identifier: str) -> None:
    await make_user(running, email="known-crlf@example.org")
    inbox.clear()
    async with browser(running) as b:
        r = await ask(running, b, identifier)
    if "\x00" in identifier:
        assert r.status_code == 400  # the request limits refuse NUL before any route runs
    else:
        assert r.status_code == 200 and "Check your mail" in r.text
    assert inbox.mails == []


@pytest.mark.parametrize("token", ["", "x", "A" * 43 + "'", "A" * 5000, "../../etc", "%00"])
async def test_malformed_tokens_get_the_invalid_link_page(running: RunningApp, token: str) -> None:
    async with browser(running) as b:
        r = await b.get("/password/reset", params={"token": token})
        assert r.status_code == 400 and "cannot be used" in r.text
        form = await b.get("/password/forgot")
        posted = await b.post("/password/reset", data={"csrf_token": csrf_of(form.text), "token": token,
                                                       "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
        assert posted.status_code in {400, 403} and "text/html" in posted.headers["content-type"]


async def test_forms_need_their_csrf_value(running: RunningApp, inbox: Inbox) -> None:
    user = await make_user(running, email="csrf@example.org")
    inbox.clear()
    async with browser(running) as b:
        await b.get("/password/forgot")
        r = await b.post("/password/forgot", data={"csrf_token": "forged", "identifier": user.username})
        await running.provider.mail.links.drain()
        assert r.status_code == 403 and inbox.mails == []
        repeated = await b.post("/password/forgot", content=b"identifier=a&identifier=b",
                                headers={"content-type": "application/x-www-form-urlencoded"})
        assert repeated.status_code == 400


async def test_login_page_links_to_password_reset(running: RunningApp) -> None:
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": "https://rp.example/cb",
                                              "response_type": "code", "scope": "openid",
                                              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                              "code_challenge_method": "S256"}, follow_redirects=True)
        assert 'href="/password/forgot"' in r.text


async def test_smtp_server_down_is_logged_and_changes_nothing_seen(database_url: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from tests._smtp import _free_port

    settings = settings_for(database_url, smtp=SmtpSettings(host="127.0.0.1", port=_free_port(), security="none",
                                                            from_address="ostiary@example.org", timeout=2.0,
                                                            username="relay", password="relay-secret-value"))
    async for node in start_app(settings):
        user = await make_user(node, email="down@example.org")
        async with browser(node) as b:
            r = await ask(node, b, user.username)
        assert r.status_code == 200 and "Check your mail" in r.text
        (failed,) = audit_events(caplog, "email_failed")
        assert failed["purpose"] == "reset" and failed["sub"] == user.id
        assert [e["outcome"] for e in audit_events(caplog, "password_reset_requested")] == ["mail_failed"]
    assert "relay-secret-value" not in caplog.text


async def test_without_smtp_there_is_no_reset(database_url: str) -> None:
    async for node in start_app(settings_for(database_url)):
        async with browser(node) as b:
            r = await b.get("/password/forgot")
            assert r.status_code == 404 and "not available" in r.text
            assert (await b.get("/password/reset", params={"token": "x"})).status_code == 404


async def test_reset_does_not_bypass_the_second_factor(running: RunningApp, inbox: Inbox) -> None:
    # Issue 11 item 9: a mailbox alone never signs in past a second factor; after a reset the
    # person signs in normally, and the factor is still asked (only `ostiary user mfa reset` or a
    # recovery code removes it).
    from ._factors import CODE, FakeFactor, registered
    from ._oidc_flow import start_authorization
    from .test_signin_levels import _factor

    user = await make_user(running, email="mfa-reset@example.org")
    factor = FakeFactor()
    factor.users.add(user.id)
    cid, _ = await make_rp(running)
    with registered(running, factor):
        inbox.clear()
        async with browser(running) as b:
            await ask(running, b, user.username)
            assert (await set_password(b, link_in(inbox.mails[0]))).status_code == 200
            path, _ = await start_authorization(b, cid)
            page = await b.get(path)
            r = await b.post(path + "/login", data={"csrf_token": csrf_of(page.text), "username": user.username,
                                                    "password": NEW_PASSWORD})
            assert r.status_code == 303
            assert (await _factor(b, path, code="000000")).status_code in {400, 200}  # the factor is asked
            assert "not signed in" in (await b.get("/account")).text
            assert (await _factor(b, path, code=CODE)).status_code == 303
    assert factor.users == {user.id}  # still enrolled
