"""A real `ostiary serve` process with two web apps and a user, a client-app callback server, Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser._helpers import MISSING, CallbackServer, callback_server, launch
from tests.e2e._server import ServerProcess, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

USERNAME = "alice"
PASSWORD = "correct horse battery staple"
SCOPE = "openid profile email offline_access"
REGISTRATION_TOKEN = "browser-initial-access-token"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium against a real `ostiary serve` process")


@dataclass(frozen=True)
class App:
    client_id: str
    client_secret: str
    name: str


@dataclass(frozen=True)
class Site:
    server: ServerProcess
    callback: CallbackServer
    web: App  # a web app made with the CLI (confidential, client_secret_basic)
    username: str = USERNAME
    password: str = PASSWORD

    def register(self, name: str) -> App:
        """Another web app, new to every user, through dynamic registration (RFC 7591)."""
        metadata = {"client_name": name, "grant_types": ["authorization_code", "refresh_token"],
                    "redirect_uris": [self.callback.redirect_uri],
                    "post_logout_redirect_uris": [self.callback.post_logout_uri], "scope": SCOPE}
        with self.server.http() as http:
            r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
        assert r.status_code == 201, r.text
        return App(r.json()["client_id"], r.json()["client_secret"], name)


def create_app(server: ServerProcess, name: str, callback: CallbackServer) -> App:
    out = server.cli("client", "create", name, "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                     "--redirect-uri", callback.redirect_uri, "--post-logout-redirect-uri", callback.post_logout_uri,
                     "--scope", SCOPE, "--json", "--database-url", server.database_url)
    data: dict[str, Any] = json.loads(out.stdout)
    return App(data["client_id"], data["client_secret"], name)


def create_user(server: ServerProcess, username: str, password: str, name: str, email: str) -> None:
    server.cli("user", "create", username, "--password-stdin", "--name", name, "--email", email,
               "--database-url", server.database_url, input=password + "\n")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if MISSING is not None:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    with callback_server() as callback:
        server = start_server(tmp_path_factory.mktemp("browser"), "--no-demo",
                              env={"OSTIARY_REGISTRATION_TOKEN": REGISTRATION_TOKEN})
        try:
            with ThreadPoolExecutor(2) as pool:  # each CLI call is a process start: run them side by side
                user = pool.submit(create_user, server, USERNAME, PASSWORD, "Alice Example", "alice@example.org")
                web = pool.submit(create_app, server, "Lab Results", callback)
                user.result()
                yield Site(server, callback, web.result())
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it is
    # open, and later asyncio code (pytest-asyncio, the CLI under test) must find none.
    with launch() as b:
        yield b
