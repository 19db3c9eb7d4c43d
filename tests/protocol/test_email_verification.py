"""Issue 11 item 9: email verification from the account page, through a real local SMTP server (aiosmtpd).

Rules: only the signed-in user asks, for their own address, with the account page's CSRF value; the
mailed link confirms that address only (an address changed since is refused), once; an admin's change
of address clears its verification (docs/sign-in.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from ostiary.errors import InvalidRequest
from tests._smtp import Inbox, link_in, smtp_server
from tests.conftest import ISSUER, RunningApp, settings_for, start_app

from ._oidc_flow import Browser, audit_events, browser, csrf_of, make_rp, make_user, run_flow
from .test_password_reset import smtp_settings


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
async def running(database_url: str, inbox: Inbox) -> AsyncIterator[RunningApp]:
    async for r in start_app(settings_for(database_url, smtp=smtp_settings(inbox))):
        yield r


@pytest.fixture(autouse=True)
def _audit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ostiary.audit")


async def signed_in(running: RunningApp, b: Browser, user: object) -> str:
    """Sign in through an application; the account page's CSRF value."""
    cid, secret = await make_rp(running)
    await run_flow(b, cid, secret, user)
    page = await b.get("/account")
    assert "Email address" in page.text, page.text
    return csrf_of(page.text)


async def ask_verification(running: RunningApp, b: Browser, csrf: str) -> httpx.Response:
    r = await b.post("/account/email/verify", data={"csrf_token": csrf})
    await running.provider.mail.links.drain()
    return r


async def confirm(b: Browser, link: str) -> httpx.Response:
    parts = urlsplit(link)
    form = await b.get(parts.path + "?" + parts.query)
    if form.status_code != 200:
        return form
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    return await b.post(parts.path, data={"csrf_token": csrf_of(form.text), "token": token.group(1)})


async def test_verification_mail_confirms_the_address_once(running: RunningApp, inbox: Inbox,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    user = await make_user(running, email="verify-me@example.org", email_verified=False)
    inbox.clear()
    async with browser(running) as b:
        csrf = await signed_in(running, b, user)
        assert "(not verified)" in (await b.get("/account")).text
        r = await ask_verification(running, b, csrf)
        assert r.status_code == 200 and "Check your mail" in r.text
        (mail,) = inbox.mails
        assert mail["To"] == "verify-me@example.org"
        link = link_in(mail)
        assert link.startswith(ISSUER + "/account/email/confirm?token=")
        opened = await b.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert opened.status_code == 200 and "Confirm the address" in opened.text
        # GET changes nothing
        assert (await running.provider.users.get(user.id)).claims.get("email_verified") is not True
        done = await confirm(b, link)
        assert done.status_code == 200 and "verified" in done.text
        assert (await running.provider.users.get(user.id)).claims["email_verified"] is True
        assert "(verified)" in (await b.get("/account")).text
        assert (await confirm(b, link)).status_code == 400  # single use
        again = await ask_verification(running, b, csrf)
        assert "Already verified" in again.text
    assert [e["sub"] for e in audit_events(caplog, "email_verification_sent")] == [user.id]
    assert [e["sub"] for e in audit_events(caplog, "email_verified")] == [user.id]


async def test_link_for_an_address_changed_since_is_refused(running: RunningApp, inbox: Inbox) -> None:
    user = await make_user(running, email="old@example.org", email_verified=False)
    inbox.clear()
    async with browser(running) as b:
        await ask_verification(running, b, await signed_in(running, b, user))
        link = link_in(inbox.mails[0])
        await running.provider.user_service.update_claims(user.username, {"email": "new@example.org"})
        r = await confirm(b, link)
        assert r.status_code == 400 and "cannot be used" in r.text
    assert (await running.provider.users.get(user.id)).claims.get("email_verified") is not True


async def test_asking_needs_the_account_csrf_value_and_a_session(running: RunningApp, inbox: Inbox) -> None:
    user = await make_user(running, email="csrf-verify@example.org", email_verified=False)
    inbox.clear()
    async with browser(running) as b:
        await signed_in(running, b, user)
        assert (await ask_verification(running, b, "forged")).status_code == 403
    async with browser(running) as stranger:
        r = await ask_verification(running, stranger, "anything")
        assert "not signed in" in r.text
    assert inbox.mails == []


async def test_verification_mails_are_throttled(running: RunningApp, inbox: Inbox) -> None:
    user = await make_user(running, email="many@example.org", email_verified=False)
    inbox.clear()
    async with browser(running) as b:
        csrf = await signed_in(running, b, user)
        answers = [await ask_verification(running, b, csrf) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429] and "retry-after" in answers[-1].headers
    assert len(inbox.mails) == 3


async def test_changing_the_address_clears_its_verification(running: RunningApp) -> None:
    service = running.provider.user_service
    user = await make_user(running, email="first@example.org")
    assert (await service.update_claims(user.username, {"name": "Renamed"})).claims["email_verified"] is True
    changed = await service.update_claims(user.username, {"email": "second@example.org"})
    assert "email_verified" not in changed.claims
    admin_vouched = await service.update_claims(user.username, {"email": "third@example.org", "email_verified": True})
    assert admin_vouched.claims["email_verified"] is True


@pytest.mark.parametrize("email", ["a@b.example\r\nBcc: evil@x.example", "two@a.example, three@b.example",
                                   "Name <n@a.example>", "x" * 300 + "@a.example", "no-at-sign"])
async def test_an_address_that_could_inject_headers_cannot_be_set(running: RunningApp, email: str) -> None:
    user = await make_user(running, email="clean@example.org")
    with pytest.raises(InvalidRequest):
        await running.provider.user_service.update_claims(user.username, {"email": email})


async def test_account_section_without_smtp_has_no_button(database_url: str) -> None:
    async for node in start_app(settings_for(database_url)):
        user = await make_user(node, email="nomail@example.org", email_verified=False)
        async with browser(node) as b:
            cid, secret = await make_rp(node)
            await run_flow(b, cid, secret, user)
            page = await b.get("/account")
            assert "nomail@example.org" in page.text and "Send a verification mail" not in page.text
            assert 'href="/password/forgot"' not in (await b.get("/password/forgot")).text
