"""Issue 9 item 2 in Chromium: what a browser app on another origin may read from the server.

The page is served by the client app's own server (127.0.0.1, another port: its redirect URI's
loopback origin). Chromium itself sends the preflights and enforces the answers.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser._helpers import needs_browser, new_page
from tests.browser.conftest import Site

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, needs_browser]

FETCH = """async ([url, init]) => {
  try {
    const r = await fetch(url, init);
    return {ok: true, status: r.status, body: await r.text(),
            challenge: r.headers.get('www-authenticate')};
  } catch (e) {
    return {ok: false, error: String(e)};  // a CORS refusal: the page learns nothing
  }
}"""


def _fetch(browser: Browser, page_origin: str, url: str, init: dict[str, Any]) -> dict[str, Any]:
    page = new_page(browser)
    try:
        page.goto(page_origin + "/app")
        result: dict[str, Any] = page.evaluate(FETCH, [url, init])
        return result
    finally:
        page.close()


def _token_init(site: Site) -> dict[str, Any]:
    basic = base64.b64encode(f"{site.web.client_id}:{site.web.client_secret}".encode()).decode()
    return {"method": "POST", "body": "grant_type=client_credentials",
            "headers": {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}}


def test_issue9_2_app_origin_reads_the_token_endpoint_after_a_preflight(site: Site, browser: Browser) -> None:
    # Authorization makes this a non-simple request: Chromium preflights it first.
    out = _fetch(browser, site.callback.base_url, site.server.base_url + "/token", _token_init(site))
    assert out["ok"], out
    assert out["status"] == 400 and "unauthorized_client" in out["body"]  # the app reads the error itself


def test_issue9_2_capability_statement_is_readable_from_any_origin(site: Site, browser: Browser) -> None:
    out = _fetch(browser, site.callback.base_url, site.server.base_url + "/fhir/metadata",
                 {"headers": {"Accept": "application/fhir+json"}})
    assert out["ok"] and out["status"] == 200 and "CapabilityStatement" in out["body"], out


def test_issue9_2_unregistered_origin_cannot_read_the_token_endpoint(site: Site, browser: Browser) -> None:
    """The same app served from localhost (a name, not the registered IP literal) is refused."""
    other = site.callback.base_url.replace("127.0.0.1", "localhost")
    out = _fetch(browser, other, site.server.base_url + "/token", _token_init(site))
    assert not out["ok"] and "Failed to fetch" in out["error"], out


def test_issue9_2_introspection_is_not_for_browsers(site: Site, browser: Browser) -> None:
    init = {**_token_init(site), "body": "token=anything"}
    out = _fetch(browser, site.callback.base_url, site.server.base_url + "/introspect", init)
    assert not out["ok"], out
