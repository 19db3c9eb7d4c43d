"""Passkeys in headless Chromium with its virtual authenticator (DevTools `WebAuthn` domain) against
`ostiary serve` on a `localhost` issuer (W3C WebAuthn Level 2: the RP ID is the issuer's host).

Registration on the account page, passwordless sign-in, a passkey as the second factor after a
password, `acr_values=phrh` met only by a credential that is not backup-eligible (RFC 8176 `hwk`),
a replayed assertion refused, another user's credential refused at the second-factor step.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser._helpers import MISSING, callback_server, check_page, launch, log_in, needs_browser, new_page
from tests.browser.conftest import App, Site, create_app, create_user
from tests.browser.test_login_flows import Request, redeem, response_of
from tests.browser.test_login_flows import authorization as authorization_at
from tests.e2e._server import start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, needs_browser]

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def local_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if MISSING is not None:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    with callback_server() as callback:
        server = start_server(tmp_path_factory.mktemp("passkeys"), "--no-demo",
                              env={"OSTIARY_ISSUER": "http://localhost:{port}"})
        try:
            with ThreadPoolExecutor(4) as pool:  # one user per journey: a passkey makes it a second factor too
                list(pool.map(lambda name: create_user(server, name, PASSWORD, name.title(), f"{name}@example.org"),
                              ["alice", "bob", "carol", "dave"]))
            yield Site(server, callback, create_app(server, "Prescriptions", callback), "alice", PASSWORD)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser(local_site: Site) -> Iterator[Browser]:
    with launch() as b:
        yield b


def with_authenticator(page: Page, *, backup_eligible: bool) -> None:
    """A platform authenticator (CTAP 2.1, internal) that holds discoverable credentials and verifies the user."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
        "defaultBackupEligibility": backup_eligible, "defaultBackupState": backup_eligible}})


def authorization(site: Site, app: App, **extra: str) -> Request:
    """An authorization request at the issuer's own origin (WebAuthn binds the RP ID to it; 127.0.0.1 would not do)."""
    req = authorization_at(site, app, **extra)
    req.url = req.url.replace(site.server.base_url, site.server.issuer, 1)
    return req


def claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def finish(site: Site, page: Page, app: App, req: Request) -> dict[str, Any]:
    """Approve on the consent page if it is shown, then redeem the code: the ID token's claims."""
    page.wait_for_function("base => location.href.startsWith(base) || !!document.querySelector("
                           "'button[name=decision]')", arg=site.callback.base_url)
    if not page.url.startswith(site.callback.base_url):
        page.click("button[name=decision][value=approve]")
        page.wait_for_url(site.callback.base_url + "/**")
    params = response_of(site, req, page.url)
    return claims(redeem(site, app, req, params["code"])["id_token"])


def register_passkey(site: Site, page: Page, username: str, name: str) -> None:
    page.goto(f"{site.server.issuer}/signin?return_to=/account")
    log_in(page, username, PASSWORD)
    page.wait_for_selector("#passkeys-title")
    page.fill("#passkey-new-name", name)
    page.click("#passkey-add")
    page.wait_for_selector(f".passkeys li:has-text('{name}')")


def test_register_then_passwordless_hardware_bound_meets_phrh(local_site: Site, browser: Browser) -> None:
    page = new_page(browser)
    with_authenticator(page, backup_eligible=False)
    register_passkey(local_site, page, "alice", "Laptop key")
    assert "Only on this device" in page.inner_text("#passkeys-title + p + ul, .passkeys")
    check_page(page, "account-passkeys")
    page.context.clear_cookies()
    req = authorization(local_site, local_site.web, acr_values="phrh")
    page.goto(req.url)
    page.wait_for_selector("#passkey-sign-in")
    check_page(page, "login-with-passkey")
    page.focus("#passkey-sign-in")
    page.keyboard.press("Enter")  # keyboard only
    found = finish(local_site, page, local_site.web, req)
    assert found["acr"] == "phrh" and {"hwk", "mfa"} <= set(found["amr"]) and "pwd" not in found["amr"]


def test_replayed_assertion_is_refused(local_site: Site, browser: Browser) -> None:
    page = new_page(browser)
    with_authenticator(page, backup_eligible=False)
    register_passkey(local_site, page, "carol", "Replay key")
    page.context.clear_cookies()
    posted: list[str] = []
    page.route("**/passkey", lambda route: (posted.append(route.request.post_data or ""), route.continue_()))
    first = authorization(local_site, local_site.web)
    page.goto(first.url)
    page.click("#passkey-sign-in")
    finish(local_site, page, local_site.web, first)
    page.unroute("**/passkey")
    credential = next(v for k, v in (p.split("=", 1) for p in posted[0].split("&")) if k == "credential")
    page.context.clear_cookies()
    page.goto(authorization(local_site, local_site.web).url)
    page.wait_for_selector("#passkey-sign-in")
    page.evaluate("""value => { const f = document.querySelector('form[data-passkey]');
                     f.elements.credential.value = decodeURIComponent(value.replace(/\\+/g, ' ')); f.submit(); }""",
                  credential)
    page.wait_for_selector("#login-error, .alert")
    assert "could not be verified" in page.inner_text("main")
    assert '"reason":"unknown, expired, used or foreign challenge"' in local_site.server.stderr


def test_password_then_passkey_as_second_factor(local_site: Site, browser: Browser) -> None:
    page = new_page(browser)
    with_authenticator(page, backup_eligible=False)
    register_passkey(local_site, page, "dave", "Second factor key")
    page.context.clear_cookies()
    req = authorization(local_site, local_site.web)
    page.goto(req.url)
    log_in(page, "dave", PASSWORD)
    page.wait_for_selector("#factor-passkey-use")
    check_page(page, "second-factor-passkey")
    page.click("#factor-passkey-use")
    found = finish(local_site, page, local_site.web, req)
    assert {"pwd", "hwk", "mfa"} <= set(found["amr"]) and found["acr"] == "phrh"


def test_synced_passkey_does_not_meet_phrh_and_another_users_credential_is_refused(
        local_site: Site, browser: Browser) -> None:
    page = new_page(browser)
    with_authenticator(page, backup_eligible=True)
    register_passkey(local_site, page, "bob", "Phone")
    assert "Synced passkey" in page.inner_text("main")
    page.context.clear_cookies()
    req = authorization(local_site, local_site.web, acr_values="phrh")
    page.goto(req.url)
    page.click("#passkey-sign-in")
    found = finish(local_site, page, local_site.web, req)
    assert found["acr"] == "phr" and "swk" in found["amr"] and "hwk" not in found["amr"]
    # Alice's password, then Bob's discoverable passkey offered at Alice's second-factor step.
    page.context.clear_cookies()
    page.goto(authorization(local_site, local_site.web).url)
    log_in(page, "alice", PASSWORD)
    page.wait_for_selector("#factor-passkey-use")
    page.evaluate("""async () => {
        const form = document.querySelector('form[data-passkey]');
        const options = JSON.parse(form.dataset.passkeyRequest);
        const bytes = t => Uint8Array.from(atob(t.replace(/-/g, '+').replace(/_/g, '/')), c => c.charCodeAt(0));
        const text = b => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g, '-')
                          .replace(/\\//g, '_').replace(/=+$/, '');
        const c = await navigator.credentials.get({publicKey: {challenge: bytes(options.challenge),
                                                              rpId: options.rpId, userVerification: 'required'}});
        form.elements.credential.value = JSON.stringify({id: c.id, rawId: text(c.rawId), type: c.type,
            response: {clientDataJSON: text(c.response.clientDataJSON),
                       authenticatorData: text(c.response.authenticatorData),
                       signature: text(c.response.signature), userHandle: text(c.response.userHandle)},
            clientExtensionResults: {}});
        form.submit(); }""")
    page.wait_for_selector("#factor-passkey-use")
    assert not page.url.startswith(local_site.callback.base_url)
    assert page.locator(".alert").count() == 1
    assert '"reason":"unknown credential or another user\'s"' in local_site.server.stderr


def test_webauthn_unavailable_says_so(local_site: Site, browser: Browser) -> None:
    page = new_page(browser)
    page.add_init_script("delete window.PublicKeyCredential")
    page.goto(authorization(local_site, local_site.web).url)
    page.wait_for_selector("[data-passkey-status]")
    assert "cannot use passkeys" in page.inner_text("[data-passkey-status]")
    assert page.is_disabled("#passkey-sign-in")
