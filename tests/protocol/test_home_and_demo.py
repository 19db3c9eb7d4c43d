"""Issue 9 item 11: the first screen. `/` is a start page (not a JSON 404); the demo ends on a readable
page with the tokens decoded and a sign-out button."""

from __future__ import annotations

import html
import re

import pytest

from tests.conftest import ISSUER, RunningApp

from ._oidc_flow import app_for, browser, csrf_of


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: pages, not storage."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


async def test_issue9_11_start_page_says_what_runs_and_links_onwards(running: RunningApp) -> None:
    r = await running.http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    links = set(re.findall(r'href="([^"]+)"', r.text))
    assert {"/.well-known/openid-configuration", "/jwks", "/account", "/smart/launcher",
            ISSUER + "/fhir/metadata"} <= links, links
    assert "/demo" not in links  # the demo is off here
    assert ISSUER in r.text and "docs/server.md" in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_issue9_11_demo_ends_on_a_readable_page_with_decoded_tokens_and_sign_out(database_url: str) -> None:
    async with app_for(database_url, demo=True) as demo:
        password = demo.app.state.bootstrap_report.demo_user_password
        assert 'href="/demo"' in (await demo.http.get("/")).text
        async with browser(demo) as b:
            r = await b.get("/demo")
            for _ in range(8):  # follow the flow: authorize, login, (consent), callback
                if r.status_code in (302, 303):
                    r = await b.get(r.headers["location"])
                elif 'name="password"' in r.text:
                    r = await b.post(str(r.url.path) + "/login", data={
                        "csrf_token": csrf_of(r.text), "username": "demo", "password": password})
                elif 'name="decision" value="approve"' in r.text:
                    r = await b.post(str(r.url.path) + "/consent", data={"csrf_token": csrf_of(r.text),
                                                                          "decision": "approve"})
                else:
                    break
        assert r.status_code == 200 and str(r.url.path) == "/demo/callback", r.text[:500]
        text = html.unescape(r.text)
        assert "<h1" in r.text and "Hello," in text
        for heading in ("ID token", "Access token", "UserInfo"):
            assert f"<h2>{heading}</h2>" in r.text
        assert '"iss": "' + ISSUER + '"' in text and '"sub": "' in text  # decoded, pretty-printed JSON
        assert "nonce</code> matches" in r.text
        assert re.search(r'<form method="post" action="/logout"', r.text) and 'name="id_token_hint"' in r.text
