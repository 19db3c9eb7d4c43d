"""CORS for browser apps (issue 9 item 2): preflights for every registered web origin on /token, /userinfo,
/revoke and the FHIR API; the actual response only for the origin of the client the request names (by
client_id or by its token); `*` on public documents; none on /introspect or /register."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import ISSUER, RunningApp

from ._oidc_flow import REDIRECT, browser, exchange, make_rp, make_user, run_flow

SPA = "https://rp.example"  # the origin of REDIRECT: derived, nothing else registered
OTHER = "https://other-spa.example"
FHIR = ISSUER + "/fhir"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: this module checks headers, not storage (the other modules run on PostgreSQL too)."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def spa(running: RunningApp) -> str:
    cid, _ = await make_rp(running, token_endpoint_auth_method="none")  # redirect_uris=[REDIRECT] only
    return cid


@pytest.fixture(scope="module")
async def other(running: RunningApp) -> str:
    cid, _ = await make_rp(running, token_endpoint_auth_method="none", redirect_uris=[OTHER + "/cb"])
    return cid


@pytest.fixture(scope="module")
async def spa_tokens(running: RunningApp, spa: str) -> dict[str, Any]:
    user = await make_user(running)
    async with browser(running) as b:
        flow = await run_flow(b, spa, None, user, scope="openid profile")
        r = await exchange(b, flow, client_id=spa)
    assert r.status_code == 200, r.text
    return dict(r.json())


def preflight(method: str = "POST", headers: str = "authorization, content-type", origin: str = SPA) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/revoke"])
async def test_issue9_2_preflight_answers_an_origin_derived_from_redirect_uris(running, spa, other, path):
    """A SMART app that registered only its redirect URI (its preflight used to answer 405)."""
    r = await running.http.options(path, headers=preflight())
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == SPA and "origin" in r.headers["vary"].lower()
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in r.headers  # never credentialed


async def test_issue9_2_loopback_redirect_allows_any_port_of_that_ip_literal(running):
    await make_rp(running, token_endpoint_auth_method="none", redirect_uris=["http://127.0.0.1/callback"])
    await asyncio.sleep(1.1)  # registered a moment ago: an unknown origin reloads the list at most once a second
    for origin in ("http://127.0.0.1:5173", "http://127.0.0.1:9000"):
        r = await running.http.options("/token", headers=preflight(origin=origin))
        assert r.headers.get("access-control-allow-origin") == origin
    r = await running.http.options("/token", headers=preflight(origin="http://localhost:5173"))
    assert "access-control-allow-origin" not in r.headers  # not an IP literal: not registered


async def test_issue9_2_token_response_only_for_the_origin_of_the_named_client(running, spa, other):
    form = {"grant_type": "authorization_code", "code": "bogus", "redirect_uri": REDIRECT}
    mine = await running.http.post("/token", data={**form, "client_id": spa}, headers={"Origin": SPA})
    assert mine.status_code == 400 and mine.headers["access-control-allow-origin"] == SPA  # errors too
    # The attack: a page on another registered origin reads answers about this client.
    theirs = await running.http.post("/token", data={**form, "client_id": spa}, headers={"Origin": OTHER})
    assert "access-control-allow-origin" not in theirs.headers
    assert "origin" in theirs.headers["vary"].lower()


async def test_issue9_2_userinfo_response_only_for_the_origin_of_the_tokens_client(running, spa, other, spa_tokens):
    auth = {"Authorization": f"Bearer {spa_tokens['access_token']}"}
    r = await running.http.get("/userinfo", headers={**auth, "Origin": SPA})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SPA
    r = await running.http.get("/userinfo", headers={**auth, "Origin": OTHER})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = await running.http.get("/userinfo", headers={"Origin": SPA})  # no token: no client named
    assert r.status_code == 401 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/revoke", "/fhir/Patient"])
async def test_issue9_2_unknown_origin_gets_no_cors_headers(running, spa, path):
    for origin in ("https://evil.example", "https://rp.example.evil.example", "null", SPA + ":8443", SPA + "/"):
        r = await running.http.post(path, data={"token": "x", "client_id": spa}, headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin
        r = await running.http.options(path, headers=preflight(origin=origin))
        assert "access-control-allow-origin" not in r.headers, origin


@pytest.mark.parametrize("path", ["/introspect", "/register"])
async def test_issue9_2_introspection_and_registration_have_no_cors(running, spa, path):
    """Server-to-server endpoints: a browser page must not call them, even from a registered origin."""
    r = await running.http.options(path, headers=preflight())
    assert "access-control-allow-origin" not in r.headers
    r = await running.http.post(path, data={"token": "x", "client_id": spa}, headers={"Origin": SPA})
    assert "access-control-allow-origin" not in r.headers


async def test_fetch_cors_authorize_endpoint_is_not_cors_enabled(running, spa):
    r = await running.http.get("/authorize", params={"client_id": spa}, headers={"Origin": SPA})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                                  "/jwks", "/fhir/.well-known/smart-configuration", "/fhir/metadata"])
async def test_issue9_2_public_documents_answer_any_origin(running, spa, path):
    r = await running.http.get(path, headers={"Origin": "https://anyone.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    r = await running.http.options(path, headers=preflight("GET", origin="https://anyone.example"))
    assert r.headers["access-control-allow-origin"] == "*"


async def test_issue9_2_fhir_preflight_allows_the_fhir_headers(running, spa):
    r = await running.http.options("/fhir/Patient/pat-001", headers=preflight(
        "PUT", "authorization, content-type, if-match, if-none-match, prefer"))
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == SPA
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "if-none-match", "prefer"} <= allowed
    assert "PUT" in r.headers["access-control-allow-methods"]


async def test_issue9_2_fhir_response_exposes_location_etag_and_the_challenge(running, spa, spa_tokens):
    r = await running.http.get("/fhir/Patient", headers={"Origin": SPA,
                                                         "Authorization": f"Bearer {spa_tokens['access_token']}"})
    # The token is not for the FHIR API (aud): 401, readable by the app of the token's client.
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == SPA
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"location", "etag", "content-location", "www-authenticate"} <= exposed
