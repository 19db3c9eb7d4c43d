"""Red-team attacks on passkeys in headless Chromium (DevTools virtual authenticator) against a real
`ostiary serve` on a `localhost` issuer: what a real browser and authenticator send, changed the way an
attacker's authenticator would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser._helpers import MISSING, callback_server, launch, needs_browser, new_page
from tests.browser.conftest import Site, create_app, create_user
from tests.browser.test_passkeys import PASSWORD, authorization, register_passkey
from tests.e2e._server import start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, CDPSession, Page

pytestmark = [pytest.mark.browser, needs_browser]


@pytest.fixture(scope="module")
def attacked_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if MISSING is not None:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    with callback_server() as callback:
        server = start_server(tmp_path_factory.mktemp("passkey-attacks"), "--no-demo",
                              env={"OSTIARY_ISSUER": "http://localhost:{port}"})
        try:
            create_user(server, "erin", PASSWORD, "Erin", "erin@example.org")
            yield Site(server, callback, create_app(server, "Prescriptions", callback), "erin", PASSWORD)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser(attacked_site: Site) -> Iterator[Browser]:
    with launch() as b:
        yield b


def device_bound_authenticator(page: Page) -> tuple[CDPSession, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
        "defaultBackupEligibility": False, "defaultBackupState": False}})
    return cdp, added["authenticatorId"]


def test_webauthn_l3_a_device_bound_passkey_that_turns_backup_eligible_is_refused(
        attacked_site: Site, browser: Browser) -> None:
    """Registered as device-bound (hwk, phrh); the authenticator later sets BE and BS (synced, copyable):
    its assertions are refused, not signed in as hwk."""
    page = new_page(browser)
    cdp, authenticator = device_bound_authenticator(page)
    register_passkey(attacked_site, page, "erin", "Desk key")
    assert "Only on this device" in page.inner_text("main")
    (credential,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    cdp.send("WebAuthn.setCredentialProperties", {"authenticatorId": authenticator,
                                                  "credentialId": credential["credentialId"],
                                                  "backupEligibility": True, "backupState": True})
    page.context.clear_cookies()
    req = authorization(attacked_site, attacked_site.web, acr_values="phrh")
    page.goto(req.url)
    page.click("#passkey-sign-in")
    page.wait_for_selector(".alert")
    assert "could not be verified" in page.inner_text("main")
    assert not page.url.startswith(attacked_site.callback.base_url)
    assert '"reason":"backup eligibility changed since registration"' in attacked_site.server.stderr
