"""Where Chromium goes after the local sign-in (`/signin?return_to=`), for return_to values that look
like another host to some URL parser (red team, docs/security.md "Sign-in levels"): the server checks
the value with Python, the browser resolves the Location with the WHATWG URL parser, so the browser
is the judge. Accepted odd values must stay on the issuer's origin; the rest must end on an error page."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from tests.browser._helpers import needs_browser, new_page
from tests.browser.conftest import PASSWORD, USERNAME, Site

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = needs_browser

# Values a browser might read as another host after resolving dot segments, percent-decoding or
# dropping characters; and plain hostile ones.
ODD = ["/.//evil.example/", "/..//evil.example/", "/%2F/evil.example", "/%2f%2Fevil.example", "/%5C%5Cevil.example",
       "/\\evil.example", "//evil.example", "/\t/evil.example", "https:evil.example", "/\u2215\u2215evil.example",
       "/\uff0f\uff0fevil.example", "/account?next=//evil.example"]


def test_return_to_never_leaves_the_issuer_origin_in_chromium(site: Site, browser: Browser) -> None:
    origin = urlsplit(site.server.base_url)
    page = new_page(browser)
    signed_in = False
    for target in ODD:
        page.goto(f"{site.server.base_url}/signin?{urlencode({'return_to': target})}")
        if not signed_in and page.locator("#username").count():
            page.fill("#username", USERNAME)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            signed_in = True
        landed = urlsplit(page.url)
        assert (landed.scheme, landed.netloc) == (origin.scheme, origin.netloc), (target, page.url)
