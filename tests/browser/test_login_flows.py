"""The end-user's side of OpenID Connect in headless Chromium against `ostiary serve`.

Login, single sign-on, consent, prompt=none, the account chooser, RP-initiated logout and the
account page; every page is screenshotted at phone and desktop widths and checked for sideways
scrolling, labelled inputs, a visible primary button and the login form's focus order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.browser._helpers import (
    check_page,
    decide_consent,
    focus_order,
    log_in,
    needs_browser,
    new_page,
    wait_for_callback,
)
from tests.browser.conftest import REGISTRATION_TOKEN, SCOPE, App, Site, create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, needs_browser]


@dataclass
class Request:
    """One authorization request, with what the client keeps to check the response."""

    url: str
    state: str
    verifier: str
    redirect_uri: str


def authorization(site: Site, app: App, **extra: str) -> Request:
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"client_id": app.client_id, "response_type": "code", "scope": "openid profile email",
              "redirect_uri": site.callback.redirect_uri, "state": state, "nonce": secrets.token_urlsafe(12),
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return Request(f"{site.server.base_url}/authorize?{urlencode(params)}", state, verifier, site.callback.redirect_uri)


def response_of(site: Site, req: Request, url: str) -> dict[str, str]:
    """The authorization response at the callback, after checking state and iss (RFC 9207)."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == req.redirect_uri
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params.get("state") == req.state, params
    assert params.get("iss") == site.server.issuer, params
    return params


def redeem(site: Site, app: App, req: Request, code: str) -> dict[str, Any]:
    with site.server.http() as http:
        r = http.post("/token", auth=(app.client_id, app.client_secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": req.redirect_uri,
            "code_verifier": req.verifier})
    assert r.status_code == 200, r.text
    tokens: dict[str, Any] = r.json()
    return tokens


def sign_in(site: Site, page: Page, app: App, **extra: str) -> tuple[Request, dict[str, str]]:
    """Log in and allow `app`; the request and its authorization response."""
    req = authorization(site, app, **extra)
    page.goto(req.url)
    log_in(page, site.username, site.password)
    page.locator("button[name=decision][value=approve], h1:text-is('client app')").first.wait_for()
    if not page.url.startswith(site.callback.base_url):  # consent given in an earlier test is remembered
        decide_consent(page, approve=True)
    return req, response_of(site, req, wait_for_callback(page, site.callback))


def test_login_page_error_consent_and_code(site: Site, browser: Browser) -> None:
    app = site.register("Test Results")
    page = new_page(browser)
    req = authorization(site, app)
    page.goto(req.url)
    assert page.locator("h1").inner_text() == "Sign in"
    assert app.name in page.locator("main").inner_text()
    check_page(page, "login")
    assert focus_order(page, 3) == ["username", "password", "Sign in"]

    log_in(page, site.username, "not the password")
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    assert page.input_value("#username") == site.username  # kept, so only the password is typed again
    check_page(page, "login-error")

    page.fill("#password", site.password)
    page.click("button.primary")
    assert page.locator("h1").inner_text() == f"Allow {app.name} to access your account?"
    scopes = page.locator("ul.scopes").inner_text()
    assert "Confirm who you are" in scopes and "See your email address" in scopes
    check_page(page, "consent")

    decide_consent(page, approve=True)
    params = response_of(site, req, wait_for_callback(page, site.callback))
    tokens = redeem(site, app, req, params["code"])
    assert tokens["token_type"].lower() == "bearer" and tokens["id_token"] and tokens["access_token"]


def test_sso_second_app_asks_only_for_consent(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(site, page, site.web)

    other = site.register("Appointments")
    req = authorization(site, other)
    page.goto(req.url)
    assert page.locator("#username").count() == 0, "logged in already: no login page for the second app"
    assert page.locator("h1").inner_text() == f"Allow {other.name} to access your account?"
    decide_consent(page, approve=True)
    params = response_of(site, req, wait_for_callback(page, site.callback))
    assert redeem(site, other, req, params["code"])["id_token"]

    # Both consents are remembered: straight back to the app, no page at all.
    again = authorization(site, site.web)
    page.goto(again.url)
    assert "code" in response_of(site, again, wait_for_callback(page, site.callback))


def test_consent_denied_returns_access_denied(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    req = authorization(site, site.register("Pharmacy"))
    page.goto(req.url)
    log_in(page, site.username, site.password)
    decide_consent(page, approve=False)
    params = response_of(site, req, wait_for_callback(page, site.callback))
    assert params["error"] == "access_denied" and "code" not in params


def test_prompt_none_without_session_is_login_required(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    req = authorization(site, site.web, prompt="none")
    page.goto(req.url)
    params = response_of(site, req, wait_for_callback(page, site.callback))
    assert params["error"] == "login_required"


def test_prompt_none_with_session(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(site, page, site.web)

    req = authorization(site, site.web, prompt="none")
    page.goto(req.url)
    params = response_of(site, req, wait_for_callback(page, site.callback))
    assert redeem(site, site.web, req, params["code"])["id_token"]

    # Logged in, but no consent for a new app yet: prompt=none cannot ask for it.
    other = authorization(site, create_app(site.server, "Billing", site.callback), prompt="none")
    page.goto(other.url)
    assert response_of(site, other, wait_for_callback(page, site.callback))["error"] == "consent_required"

    # A self-registered app this user never allowed gets no redirect before the user interacts
    # (RFC 9700 §4.11.2): the error is shown here instead.
    unknown = authorization(site, site.register("Coupons"), prompt="none")
    page.goto(unknown.url)
    page.wait_for_selector("text=consent_required")
    assert page.url.startswith(site.server.base_url)


def test_account_chooser(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(site, page, site.web)
    req = authorization(site, site.web, prompt="select_account")
    page.goto(req.url)
    assert page.locator("h1").inner_text() == "Choose an account"
    check_page(page, "account-chooser")
    page.click("button[name=choice][value=continue]")
    assert "code" in response_of(site, req, wait_for_callback(page, site.callback))


def test_logout_confirmation_then_post_logout_redirect(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    req, params = sign_in(site, page, site.web)
    id_token = redeem(site, site.web, req, params["code"])["id_token"]
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": site.callback.post_logout_uri,
                       "state": "bye-123"})
    page.goto(f"{site.server.base_url}/logout?{query}")
    assert page.locator("h1").inner_text() == f"Sign out of {site.web.name}?"
    check_page(page, "logout-confirmation")
    page.click("button[name=decision][value=logout]")
    page.wait_for_url(site.callback.post_logout_uri + "?*")
    assert page.url == site.callback.post_logout_uri + "?state=bye-123"

    req = authorization(site, site.web, prompt="none")  # the session is gone
    page.goto(req.url)
    assert response_of(site, req, wait_for_callback(page, site.callback))["error"] == "login_required"


def test_logout_without_redirect_shows_signed_out(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    sign_in(site, page, site.web)
    page.goto(f"{site.server.base_url}/logout")
    assert page.locator("h1").inner_text() == "Sign out?"
    page.click("button[name=decision][value=logout]")
    page.wait_for_selector("h1:text('You are signed out')")
    check_page(page, "logged-out", primary=False)


def test_account_page_revokes_consent(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    app = site.register("Fitness Tracker")
    req, params = sign_in(site, page, app, scope="openid profile offline_access")
    tokens = redeem(site, app, req, params["code"])
    assert tokens.get("refresh_token"), tokens

    page.goto(f"{site.server.base_url}/account")
    item = page.locator("ul.consents li", has_text=app.name)
    assert item.count() == 1
    check_page(page, "account", primary=False)
    item.get_by_role("button", name="Remove access").click()
    page.wait_for_load_state()
    assert page.locator("ul.consents li", has_text=app.name).count() == 0

    with site.server.http() as http:  # the app's tokens ended with the consent
        r = http.post("/token", auth=(app.client_id, app.client_secret),
                      data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    req = authorization(site, app)  # and the next sign-in asks again
    page.goto(req.url)
    assert page.locator("button[name=decision][value=approve]").is_visible()


def test_error_page_for_unknown_client(site: Site, browser: Browser) -> None:
    page = new_page(browser)
    query = urlencode({"client_id": "no-such-app", "response_type": "code", "scope": "openid",
                       "redirect_uri": site.callback.redirect_uri})
    response = page.goto(f"{site.server.base_url}/authorize?{query}")
    assert response is not None and response.status == 400
    assert page.url.startswith(site.server.base_url), "never redirected to an unverified redirect URI"
    assert page.get_by_role("alert").inner_text() == "this application is not registered"
    check_page(page, "error", primary=False)


def test_login_works_without_javascript(site: Site, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    req = authorization(site, site.register("Plain HTML"))
    page.goto(req.url)
    log_in(page, site.username, site.password)
    decide_consent(page, approve=True)
    assert "code" in response_of(site, req, wait_for_callback(page, site.callback))
    context.close()


def test_frontchannel_logout_loads_each_apps_logout_uri_then_moves_on(site: Site, browser: Browser) -> None:
    """OIDC Front-Channel Logout 1.0 §4 in a real browser: the signed-out page's iframe really loads the
    app's URI with iss and sid (its CSP frame-src allows that origin), then the browser goes on."""
    front = site.callback.base_url + "/frontchannel"
    metadata = {"client_name": "Ward Rounds", "grant_types": ["authorization_code"], "scope": SCOPE,
                "redirect_uris": [site.callback.redirect_uri], "frontchannel_logout_uri": front,
                "post_logout_redirect_uris": [site.callback.post_logout_uri],
                "frontchannel_logout_session_required": True}
    with site.server.http() as http:
        r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert r.status_code == 201, r.text
    app = App(r.json()["client_id"], r.json()["client_secret"], "Ward Rounds")
    page = new_page(browser)
    req, params = sign_in(site, page, app)
    id_token = redeem(site, app, req, params["code"])["id_token"]
    sid = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))["sid"]
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": site.callback.post_logout_uri})
    page.goto(f"{site.server.base_url}/logout?{query}")
    page.click("button[name=decision][value=logout]")
    page.wait_for_url(site.callback.post_logout_uri)
    loaded = [parse_qs(urlsplit(u).query) for u in site.callback.hits if u.startswith(front + "?")]
    assert {"iss": [site.server.issuer], "sid": [sid]} in loaded, site.callback.hits
