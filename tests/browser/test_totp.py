"""Authenticator app (TOTP, RFC 6238) in headless Chromium against `ostiary serve` (issue 11, how it is checked).

The user sets up the app on the account page with the keyboard only, the test computing codes from the key
shown on the page (as the phone would); then signs in to a client with password + code (acr mfa, amr pwd otp
mfa in the ID token); steps up a password session by acr_values (only the code is asked); a code used once
is refused. Every page at 375 and 1280 px: no sideways scrolling, labelled inputs.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from ostiary.server.mfa import totp
from tests.browser._helpers import check_page, decide_consent, focus_order, needs_browser, new_page, wait_for_callback
from tests.browser.conftest import Site, create_user
from tests.browser.test_login_flows import authorization, redeem, response_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, needs_browser]

MFA = "urn:ostiary:acr:mfa"
USERNAME, PASSWORD = "tobias", "a long password for tobias"


def claims_of(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def code_after(secret: str, used: int) -> tuple[int, str]:
    """A code of a time step after `used` that the server accepts now (within its ±1 window)."""
    while totp.step_at(time.time()) + 1 <= used:
        time.sleep(0.5)
    step = totp.step_at(time.time()) + 1
    return step, totp.code_at(secret, step)


def keyboard_sign_in(page: Page) -> None:
    """Username, Tab, password, Enter: the login form with the keyboard only."""
    page.wait_for_selector("#username:focus")
    page.keyboard.type(USERNAME)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def keyboard_code(page: Page, code: str) -> None:
    """On the second-factor page: the code field has the focus; type the code and press Enter."""
    page.wait_for_selector("#factor-totp-code:focus")
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def tab_to(page: Page, element_id: str, presses: int = 12) -> None:
    page.click("h1")
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_enrol_sign_in_step_up_and_reuse(site: Site, browser: Browser) -> None:
    create_user(site.server, USERNAME, PASSWORD, "Tobias Example", "tobias@example.org")
    app = site.register("E-prescribing")

    # 1. A password session, then the set-up on the account page (keyboard only).
    account = new_page(browser)
    account.goto(f"{site.server.base_url}/signin?return_to=/account")
    keyboard_sign_in(account)
    account.wait_for_url("**/account")
    check_page(account, "account-totp-off", primary=False)
    start = account.get_by_role("button", name="Set up authenticator app")
    start.focus()
    account.keyboard.press("Enter")
    account.wait_for_selector("#totp-secret")
    secret = account.inner_text("#totp-secret").replace(" ", "")
    assert account.locator("svg[role=img]").is_visible()
    assert account.get_attribute("#totp-uri", "href").startswith(f"otpauth://totp/Ostiary:{USERNAME}?secret={secret}")
    check_page(account, "account-totp-setup")
    tab_to(account, "totp-code")
    activated = totp.step_at(time.time())
    account.keyboard.type(totp.code_at(secret, activated))
    account.keyboard.press("Enter")
    account.wait_for_selector("ul.recovery-codes")
    assert account.locator("ul.recovery-codes li").count() == 10
    check_page(account, "account-recovery-codes", primary=False)
    account.goto(f"{site.server.base_url}/account")
    assert "10 recovery codes left" in account.locator("#totp").inner_text()
    check_page(account, "account-totp-on", primary=False)

    # 2. Step-up: the same browser's session is still password-only; acr_values asks for multi-factor.
    req = authorization(site, app, acr_values=MFA)
    account.goto(req.url)
    account.wait_for_selector("#factor-totp-code")
    assert account.locator("#password").count() == 0  # only the missing factor
    check_page(account, "second-factor")
    assert focus_order(account, 1) == ["factor-totp-code"]
    used, code = code_after(secret, activated)
    keyboard_code(account, code)
    account.locator("button[name=decision][value=approve]").wait_for()
    decide_consent(account, approve=True)
    params = response_of(site, req, wait_for_callback(account, site.callback))
    claims = claims_of(redeem(site, app, req, params["code"])["id_token"])
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp", "mfa"]

    # 3. A new browser: password + the code just used: refused; then a later code signs in.
    other = new_page(browser, width=375)
    req = authorization(site, app)
    other.goto(req.url)
    keyboard_sign_in(other)
    keyboard_code(other, code)
    assert "not accepted" in other.get_by_role("alert").inner_text()
    check_page(other, "second-factor-refused")
    _, code = code_after(secret, used)
    other.fill("#factor-totp-code", "")
    keyboard_code(other, code)
    params = response_of(site, req, wait_for_callback(other, site.callback))  # consent was given in step 2
    claims = claims_of(redeem(site, app, req, params["code"])["id_token"])
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp", "mfa"]
    other.context.close()
    account.context.close()
