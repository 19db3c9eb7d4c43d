"""Headless Chromium (through Playwright), a callback server for redirect URIs, and the login steps.

Shared by the browser tests and the OpenID Connect interop tests. Chromium is the system's
/usr/bin/chromium; Playwright never downloads a browser here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("OSTIARY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 15_000
WIDTHS = (375, 1280)
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (set OSTIARY_TEST_CHROMIUM to a chromium binary)"
    return None


MISSING = _missing()
needs_browser = pytest.mark.skipif(MISSING is not None, reason=f"browser tests need Chromium: {MISSING}")


_running: list[Browser] = []  # Playwright's sync API runs one instance per thread: nested users share it


@contextlib.contextmanager
def launch() -> Iterator[Browser]:
    """Headless Chromium, closed afterwards (or the one already running, left open)."""
    if _running:
        yield _running[-1]
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        _running.append(browser)
        try:
            yield browser
        finally:
            _running.remove(browser)
            browser.close()


def new_page(browser: Browser, width: int = 1280) -> Page:
    """A page in a fresh context (no cookies): a new browser profile for each user journey."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


# -- the client's redirect URIs --------------------------------------------------------------


@dataclass
class CallbackServer:
    """A tiny HTTP server standing in for the client app: records every GET URL and every POST body it gets."""

    httpd: ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/callback"

    @property
    def post_logout_uri(self) -> str:
        return self.base_url + "/logged-out"


@contextlib.contextmanager
def callback_server() -> Iterator[CallbackServer]:
    hits: list[str] = []
    posts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # a form_post response
            posts.append(self.rfile.read(int(self.headers.get("content-length") or 0)).decode())
            self.do_GET()

        def do_GET(self) -> None:
            hits.append(f"http://127.0.0.1:{self.server.server_address[1]}{self.path}")
            body = b"<!doctype html><title>client app</title><h1>client app</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield CallbackServer(httpd, hits, posts)
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the user's steps ------------------------------------------------------------------------


def log_in(page: Page, username: str, password: str) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit].primary")


def decide_consent(page: Page, approve: bool = True) -> None:
    page.click(f"button[name=decision][value={'approve' if approve else 'deny'}]")


def wait_for_callback(page: Page, callback: CallbackServer) -> str:
    """The full URL the browser was sent back to (after the server's 303 to the redirect URI)."""
    page.wait_for_url(callback.base_url + "/**")
    return page.url


def sign_in_and_consent(page: Page, url: str, username: str, password: str, callback: CallbackServer) -> str:
    """Open an authorization URL, log in, allow, and return the callback URL with the code."""
    page.goto(url)
    log_in(page, username, password)
    page.wait_for_selector("button[name=decision][value=approve]")
    decide_consent(page, approve=True)
    return wait_for_callback(page, callback)


# -- page checks -------------------------------------------------------------------------------

_UNLABELLED_INPUTS = """() => Array.from(document.querySelectorAll('input[type=text], input[type=password]'))
  .filter(i => !i.id || !document.querySelector(`label[for="${CSS.escape(i.id)}"]`))
  .map(i => i.name || i.outerHTML)"""


def check_page(page: Page, name: str, *, primary: bool = True) -> None:
    """Screenshot the current page at each width and check layout and accessibility basics."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{name} at {width} px scrolls sideways ({scroll_width} px wide)"
        assert page.evaluate(_UNLABELLED_INPUTS) == [], f"{name}: inputs without <label for>"
        if primary:
            button = page.locator("button.primary").first
            assert button.is_visible(), f"{name} at {width} px: the primary button is not visible"
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, width, box)
    page.set_viewport_size({"width": 1280, "height": 800})


def focus_order(page: Page, presses: int) -> list[str]:
    """What Tab reaches from the page's heading: id, or the text of a button."""
    page.click("h1")  # moves the sequential focus starting point to the top, away from autofocus
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("(e => e.id || e.textContent.trim())(document.activeElement)"))
    return reached
