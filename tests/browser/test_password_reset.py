"""Password reset in headless Chromium against `ostiary serve`, through a local SMTP server the test starts.

"Forgot your password?" on the login page, the mail read from the SMTP server, the link followed, a new
password set and used to sign in; the link refused a second time and once expired; an unknown user and
an unverified address get the same page and no mail (issue 11 item 9, docs/sign-in.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests._smtp import Inbox, link_in, smtp_server
from tests.browser._helpers import (
    MISSING,
    CallbackServer,
    callback_server,
    check_page,
    launch,
    log_in,
    needs_browser,
    new_page,
    sign_in_and_consent,
)
from tests.browser.conftest import App, create_app, create_user
from tests.browser.test_login_flows import authorization
from tests.e2e._server import ServerProcess, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, needs_browser]

OLD_PASSWORD = "the old forgotten password"
NEW_PASSWORD = "a new memorable passphrase"


@dataclass(frozen=True)
class MailSite:
    server: ServerProcess
    callback: CallbackServer
    web: App
    inbox: Inbox


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSite]:
    if MISSING is not None:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    with smtp_server() as inbox, callback_server() as callback:
        env = {"OSTIARY_ISSUER": "http://127.0.0.1:{port}", "OSTIARY_SMTP__HOST": "127.0.0.1",
               "OSTIARY_SMTP__PORT": str(inbox.port), "OSTIARY_SMTP__SECURITY": "none",
               "OSTIARY_SMTP__FROM_ADDRESS": "sign-in@example.org"}
        server = start_server(tmp_path_factory.mktemp("reset"), "--no-demo", env=env)
        try:
            create_user(server, "rosa", OLD_PASSWORD, "Rosa Example", "rosa@example.org")
            create_user(server, "uma", OLD_PASSWORD, "Uma Unverified", "uma@example.org")
            create_user(server, "nina", OLD_PASSWORD, "Nina Unverified", "nina@example.org")
            server.cli("user", "update", "rosa", "--email-verified", "--database-url", server.database_url)
            yield MailSite(server, callback, create_app(server, "Lab Results", callback), inbox)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser(site: MailSite) -> Iterator[Browser]:
    with launch() as b:
        yield b


def ask_for_link(page: Page, identifier: str) -> str:
    """Type into the "Forgot your password?" form with the keyboard only; the answer's text."""
    page.locator("#identifier").wait_for()
    page.keyboard.type(identifier)  # the field has the focus (autofocus)
    page.keyboard.press("Enter")
    page.locator("h1").wait_for()
    return page.locator("main").inner_text()


def test_reset_through_the_mail_then_sign_in(site: MailSite, browser: Browser) -> None:
    site.inbox.clear()
    page = new_page(browser)
    req = authorization(site, site.web)
    # A Host other than the issuer's (as a poisoned request would have): the mailed link still names the issuer.
    page.goto(req.url.replace("127.0.0.1", "localhost", 1))
    page.click("text=Forgot your password?")
    assert page.locator("h1").inner_text() == "Forgot your password?"
    check_page(page, "password-forgot")
    answer = ask_for_link(page, "rosa")
    assert "Check your mail" in answer
    check_page(page, "password-forgot-sent", primary=False)

    (mail,) = site.inbox.wait_for(1)
    assert mail["To"] == "rosa@example.org" and mail["From"] == "sign-in@example.org"
    link = link_in(mail)
    assert link.startswith(site.server.issuer + "/password/reset?token="), link

    page.goto(link)
    assert page.locator("h1").inner_text() == "Choose a new password"
    check_page(page, "password-reset")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    page.click("button.primary")
    assert page.locator("h1").inner_text() == "Your password is changed"
    check_page(page, "password-changed", primary=False)
    assert page.get_by_role("link", name="Sign in").is_visible()

    page.goto(link)  # a second use
    assert page.locator("h1").inner_text() == "This link cannot be used"

    page.goto(authorization(site, site.web).url)
    log_in(page, "rosa", OLD_PASSWORD)  # a reset never signed anyone in; the old password is gone
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    fresh = new_page(browser)
    url = sign_in_and_consent(fresh, authorization(site, site.web).url, "rosa", NEW_PASSWORD,
                              site.callback)
    assert "code=" in url


def test_expired_link_is_refused(site: MailSite, browser: Browser) -> None:
    site.inbox.clear()
    page = new_page(browser)
    page.goto(site.server.base_url + "/password/forgot")
    ask_for_link(page, "rosa@example.org")
    link = link_in(site.inbox.wait_for(1)[0])
    with sqlite3.connect(site.server.database_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE email_links SET expires_at = 1")  # fifteen minutes later
    page.goto(link)
    assert page.locator("h1").inner_text() == "This link cannot be used"


def test_unknown_user_and_unverified_address_same_page_no_mail(site: MailSite, browser: Browser) -> None:
    site.inbox.clear()
    answers = []
    for identifier in ("nobody-here", "nina", "nina@example.org", "rosa"):
        page = new_page(browser)
        page.goto(site.server.base_url + "/password/forgot")
        answers.append(ask_for_link(page, identifier))
    assert len(set(answers)) == 1
    site.inbox.wait_for(1)  # the one for rosa, sent last: the others had their turn before it
    assert [m["To"] for m in site.inbox.mails] == ["rosa@example.org"]


def test_verify_the_address_from_the_account_page(site: MailSite, browser: Browser) -> None:
    site.inbox.clear()
    page = new_page(browser)
    page.goto(site.server.base_url + "/signin?return_to=/account")
    log_in(page, "uma", OLD_PASSWORD)
    page.wait_for_url(site.server.base_url + "/account")
    assert "uma@example.org (not verified)" in page.locator("main").inner_text()
    check_page(page, "account-email-unverified", primary=False)
    page.click("text=Send a verification mail")
    assert page.locator("h1").inner_text() == "Check your mail"
    (mail,) = site.inbox.wait_for(1)
    assert mail["To"] == "uma@example.org"
    link = link_in(mail)
    assert link.startswith(site.server.issuer + "/account/email/confirm?token=")
    page.goto(link)
    check_page(page, "email-confirm")
    page.click("button.primary")
    assert page.locator("h1").inner_text() == "Your email address is verified"
    page.goto(site.server.base_url + "/account")
    assert "uma@example.org (verified)" in page.locator("main").inner_text()
