"""The developer portal in headless Chromium (issue 10 item 8): a developer registers an app on /developers,
gets a token with it and calls an API through a real `ostiary gateway`; then rotates its secret and deletes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser._helpers import MISSING, check_page, launch, log_in, needs_browser, new_page
from tests.e2e._gateway import Process, header_values, start_gateway, start_upstream, upstream_log
from tests.e2e._server import ServerProcess, start_server
from tests.e2e.gateway_fixtures import NOTES, notes_routes

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, needs_browser]

USERNAME, PASSWORD = "devon", "correct horse battery staple"


def gateway_toml(issuer: str, upstream: str) -> str:
    return notes_routes(issuer, upstream, 'self_service = true\nname = "Notes API"\n'
                                          'description = "Read and write the team\'s notes."')


@dataclass(frozen=True)
class Portal:
    server: ServerProcess
    gateway: Process
    upstream: Process


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    if MISSING is not None:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    workdir = tmp_path_factory.mktemp("portal")
    upstream = start_upstream(workdir)
    config = workdir / "gateway.toml"
    config.write_text(gateway_toml("http://127.0.0.1:1", upstream.base_url))  # the server reads only the routes
    server = start_server(workdir, "--no-demo", env={"OSTIARY_PORTAL__GATEWAY_CONFIG": str(config)})
    gateway = None
    try:
        server.cli("user", "create", USERNAME, "--password-stdin", "--name", "Devon Example",
                   "--database-url", server.database_url, input=PASSWORD + "\n")
        server.cli("user", "access", USERNAME, "--role", "develop", "--database-url", server.database_url)
        gateway = start_gateway(workdir, gateway_toml(server.issuer, upstream.base_url))
        yield Portal(server, gateway, upstream)
    finally:
        if gateway is not None:
            gateway.stop()
        server.stop()
        upstream.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch() as b:
        yield b


def token(portal: Portal, cid: str, secret: str) -> httpx.Response:
    with portal.server.http() as http:
        return http.post("/token", data={"grant_type": "client_credentials", "scope": "notes:read",
                                         "resource": NOTES}, auth=(cid, secret))


def test_item8_register_an_app_get_a_token_and_call_the_api_through_the_gateway(portal: Portal,
                                                                                browser: Browser) -> None:
    from playwright.sync_api import expect

    page = new_page(browser)
    page.goto(portal.server.base_url + "/developers")
    assert page.locator("text=Notes API").is_visible() and page.locator(f"text={NOTES}").first.is_visible()
    check_page(page, "portal-signed-out", primary=False)  # a "Sign in" link to the local sign-in
    page.click("#sign-in")  # the local sign-in, the same steps as for an app
    log_in(page, USERNAME, PASSWORD)
    page.fill("#client_name", "Notes dashboard")
    page.check("input[name=api]")
    check_page(page, "portal-developer")
    page.click("form[action='/developers/apps'] button.primary")
    cid = page.locator("#issued-client-id").inner_text()
    secret = page.locator("#issued-client-secret").inner_text()
    check_page(page, "portal-issued", primary=False)
    assert page.locator("#apps").inner_text().count(cid) == 1

    r = token(portal, cid, secret)
    assert r.status_code == 200, r.text
    access_token = r.json()["access_token"]
    called = httpx.get(portal.gateway.base_url + "/notes/1", headers={"Authorization": f"Bearer {access_token}"})
    assert called.status_code == 200, called.text
    assert header_values(upstream_log(portal.upstream)[-1], "X-Ostiary-Client-Id") == [cid]

    page.locator("#apps li", has_text=cid).locator("text=Rotate secret").click()
    # The click starts a form post; wait for the page that shows the new secret, not the old one.
    expect(page.locator("#issued-client-secret")).not_to_have_text(secret)
    new_secret = page.locator("#issued-client-secret").inner_text()
    assert new_secret != secret
    assert token(portal, cid, secret).status_code == 401
    assert token(portal, cid, new_secret).status_code == 200
    page.locator("#apps li", has_text=cid).locator("text=Delete").click()
    expect(page.locator("text=No apps yet.")).to_be_visible()
    assert token(portal, cid, new_secret).status_code == 401
