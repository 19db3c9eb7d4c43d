"""Federation in headless Chromium against two real servers (issue 11, how it is checked).

A second `ostiary serve` is the upstream identity provider (its client registered with the CLI); the
server under test signs users in through it. First sign-in creates an account (no access facts), the
ID token says amr ["fed"]; a forced re-authentication (prompt=login) shows the upstream's login again;
an upstream that ignores prompt=login (simulated by rewriting its authorization request in the
browser) answers with its old session and is refused; the linked identity is on the account page.
Pages at 375 and 1280 px. The two servers use different host names (localhost and 127.0.0.1) so their
cookies stay apart, as two sites would.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.browser._helpers import (
    MISSING,
    callback_server,
    check_page,
    decide_consent,
    launch,
    log_in,
    needs_browser,
    new_page,
    wait_for_callback,
)
from tests.browser.conftest import App, Site, create_app, create_user
from tests.browser.test_login_flows import authorization, redeem, response_of
from tests.e2e._server import ServerProcess, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = [pytest.mark.browser, needs_browser]

UP_USER, UP_PASSWORD = "uma", "a long upstream password for uma"
LABEL = "Upstream Hospital"


@dataclass(frozen=True)
class Federated:
    upstream: ServerProcess
    site: Site  # the server under test (issuer http://localhost:PORT), its client app and callback
    app: App


def _downstream_url(server: ServerProcess) -> str:
    return server.issuer  # http://localhost:PORT: another cookie jar than the upstream's 127.0.0.1


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federated]:
    if MISSING is not None:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    up_dir, down_dir = tmp_path_factory.mktemp("upstream"), tmp_path_factory.mktemp("downstream")
    with callback_server() as callback:
        upstream = start_server(up_dir, "--no-demo")
        downstream = None
        try:
            create_user(upstream, UP_USER, UP_PASSWORD, "Uma Upstream", "uma@upstream.example")
            made = json.loads(upstream.cli(
                "client", "create", "Downstream", "--grant-type", "authorization_code", "--scope",
                "openid profile email", "--redirect-uri", "http://localhost:9/federation/upstream/callback",
                "--skip-consent", "--json", "--database-url", upstream.database_url).stdout)
            config = down_dir / "ostiary.toml"
            config.write_text(f'''
[[federation]]
id = "upstream"
issuer = "{upstream.issuer}"
client_id = "{made['client_id']}"
client_secret_env = "UPSTREAM_CLIENT_SECRET"
label = "{LABEL}"
clock_skew = 1
userinfo = true
''')
            downstream = start_server(down_dir, "--no-demo", env={
                "OSTIARY_CONFIG": str(config), "OSTIARY_ISSUER": "http://localhost:{port}",
                "UPSTREAM_CLIENT_SECRET": made["client_secret"]})
            upstream.cli("client", "update", made["client_id"], "--redirect-uri",
                         f"{_downstream_url(downstream)}/federation/upstream/callback",
                         "--database-url", upstream.database_url)
            callback_site = Site(downstream, callback, create_app(downstream, "Lab Results", callback))
            yield Federated(upstream, _with_localhost(callback_site), callback_site.web)
        finally:
            if downstream is not None:
                downstream.stop()
            upstream.stop()


def _with_localhost(site: Site) -> Site:
    """The site as the browser sees it: authorization URLs on the issuer's host name."""
    server = site.server
    server.base_url = server.issuer  # the test's own HTTP calls reach localhost as well
    return site


@pytest.fixture(scope="module")
def browser(federated: Federated) -> Iterator[Browser]:
    with launch() as b:
        yield b


def claims_of(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def press_upstream_button(page: Page) -> None:
    page.get_by_role("button", name=f"Sign in with {LABEL}").click()


def ignoring_reauthentication(route: Route) -> None:
    """A route handler for the start of the upstream sign-in: the upstream authorization request without
    prompt and max_age, as an upstream that ignores them would treat it (its old session answers)."""
    response = route.fetch(max_redirects=0)
    location = urlsplit(response.headers["location"])
    params = [(k, v) for k, v in parse_qsl(location.query) if k not in ("prompt", "max_age")]
    assert len(params) < len(parse_qsl(location.query)), "prompt=login was forwarded upstream"
    stripped = f"{location.scheme}://{location.netloc}{location.path}?{urlencode(params)}"
    route.fulfill(status=303, headers={**response.headers, "location": stripped})


def test_first_sign_in_forced_reauthentication_and_a_stale_upstream_session(federated: Federated,
                                                                            browser: Browser) -> None:
    site, app, upstream = federated.site, federated.app, federated.upstream
    page = new_page(browser)

    # 1. First sign-in: the login page offers the upstream; its own login; a new account here.
    req = authorization(site, app)
    page.goto(req.url)
    page.wait_for_selector("#username")
    check_page(page, "federation-login")
    press_upstream_button(page)
    page.wait_for_url(f"{upstream.base_url}/**")
    log_in(page, UP_USER, UP_PASSWORD)
    page.wait_for_url("**/federation/link")
    assert "uma@upstream.example" in page.content()
    check_page(page, "federation-first-sign-in")
    page.get_by_role("button", name="Create a new account").click()
    page.wait_for_selector("button[name=decision][value=approve]")
    decide_consent(page)
    tokens = redeem(site, app, req, response_of(site, req, wait_for_callback(page, site.callback))["code"])
    first = claims_of(tokens["id_token"])
    assert first["amr"] == ["fed"] and first["acr"] == "urn:ostiary:acr:password"

    # 2. prompt=login, and the upstream answers from its old session: refused (its auth_time is older).
    time.sleep(2.5)  # beyond the configured clock_skew of 1 s
    start = f"{site.server.issuer}/federation/upstream/start"
    page.route(start, ignoring_reauthentication)
    req = authorization(site, app, prompt="login")
    page.goto(req.url)
    press_upstream_button(page)
    page.wait_for_selector("text=did not work")
    assert "/federation/upstream/callback" in page.url
    assert "upstream authentication is older" in site.server.stdout + site.server.stderr  # audit: the reason
    page.unroute(start)

    # 3. prompt=login forwarded: the upstream shows its login again, and the new auth_time counts.
    asked_at = int(time.time())
    req = authorization(site, app, prompt="login")
    page.goto(req.url)
    press_upstream_button(page)
    page.wait_for_url(f"{upstream.base_url}/**")
    page.wait_for_selector("#password")  # the upstream asks again despite its session
    log_in(page, UP_USER, UP_PASSWORD)
    tokens = redeem(site, app, req, response_of(site, req, wait_for_callback(page, site.callback))["code"])
    again = claims_of(tokens["id_token"])
    assert again["sub"] == first["sub"] and again["auth_time"] >= asked_at - 1 and again["amr"] == ["fed"]

    # 4. The account page lists the linked identity.
    page.goto(f"{site.server.issuer}/account")
    page.wait_for_selector("#linked-identities")
    assert LABEL in page.content() and "uma@upstream.example" in page.content()
    check_page(page, "account-linked-identities", primary=False)


