"""CORS for browser clients (per-client allowed_cors_origins) on /token, /userinfo, /revoke; `*` on public docs."""

from __future__ import annotations

import pytest

from ._oidc_flow import make_rp

SPA = "https://spa.example"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: this module checks request validation and metadata, not storage (the other modules run
    on PostgreSQL too)."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def spa(running):
    # Registered before the first CORS request so the origin cache holds it.
    cid, _ = await make_rp(running, token_endpoint_auth_method="none", allowed_cors_origins=[SPA])
    return cid


@pytest.mark.parametrize(("path", "method", "body"), [
    ("/token", "POST", {"grant_type": "authorization_code", "code": "bogus"}),
    ("/userinfo", "GET", None),
    ("/userinfo", "POST", None),
    ("/revoke", "POST", {"token": "bogus"}),
])
async def test_fetch_cors_registered_origin_is_allowed_on_errors_too(running, spa, path, method, body):
    data = {**body, "client_id": spa} if body else None
    r = await running.http.request(method, path, data=data, headers={"Origin": SPA})
    assert r.headers.get("access-control-allow-origin") == SPA, (r.status_code, dict(r.headers))
    assert "origin" in r.headers.get("vary", "").lower()
    if r.status_code == 401:
        assert "www-authenticate" in r.headers.get("access-control-expose-headers", "").lower()


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/revoke"])
async def test_fetch_cors_preflight_is_answered(running, spa, path):
    r = await running.http.options(path, headers={
        "Origin": SPA, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == SPA
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("path", ["/token", "/userinfo", "/revoke"])
async def test_fetch_cors_unknown_origin_gets_no_cors_headers(running, spa, path):
    for origin in ("https://evil.example", "https://spa.example.evil.example", "null", SPA + ":8443"):
        r = await running.http.post(path, data={"token": "x"}, headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin
        r = await running.http.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers, origin


async def test_fetch_cors_authorize_endpoint_is_not_cors_enabled(running, spa):
    r = await running.http.get("/authorize", params={"client_id": spa}, headers={"Origin": SPA})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                                  "/jwks"])
async def test_fetch_cors_discovery_and_jwks_answer_any_origin(running, spa, path):
    r = await running.http.get(path, headers={"Origin": "https://anyone.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    r = await running.http.options(path, headers={"Origin": "https://anyone.example",
                                                  "Access-Control-Request-Method": "GET"})
    assert r.headers["access-control-allow-origin"] == "*"
