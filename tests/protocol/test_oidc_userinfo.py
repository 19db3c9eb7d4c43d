"""UserInfo (OIDC Core §5.3) with RFC 6750 bearer tokens, and claims released by scope (§5.4)."""

from __future__ import annotations

import pytest

from ._oidc_flow import basic, browser, exchange, make_rp, make_user, run_flow

ADDRESS = {"street_address": "1 Main St", "locality": "Springfield", "country": "US"}


@pytest.fixture(scope="module")
async def person(running):
    user = await make_user(running, phone_number="+1 555 0100", phone_number_verified=True, address=ADDRESS,
                           given_name="Alice")
    return user


async def _access_token(running, user, scope: str) -> str:
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        r = await exchange(b, await run_flow(b, cid, secret, user, scope=scope))
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


async def test_oidc_core_5_3_1_userinfo_by_get_and_post_with_bearer_header(running, person):
    token = await _access_token(running, person, "openid profile email")
    for method in ("GET", "POST"):
        r = await running.http.request(method, "/userinfo", headers=_bearer(token))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["sub"] == person.id and body["name"] == "Alice Example"
        assert body["email"] == "alice@example.com" and body["email_verified"] is True


async def test_rfc6750_2_2_access_token_in_form_body(running, person):
    token = await _access_token(running, person, "openid")
    r = await running.http.post("/userinfo", data={"access_token": token})
    assert r.status_code == 200 and r.json() == {"sub": person.id}


async def test_rfc6750_2_access_token_in_header_and_body_is_invalid_request(running, person):
    token = await _access_token(running, person, "openid")
    r = await running.http.post("/userinfo", data={"access_token": token}, headers=_bearer(token))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_rfc6750_3_1_no_token_is_401_without_an_error_code(running):
    for method in ("GET", "POST"):
        r = await running.http.request(method, "/userinfo")
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer realm=") and "error=" not in challenge


@pytest.mark.parametrize("token", ["garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x" * 5000])
async def test_rfc6750_3_1_invalid_token_is_401_invalid_token(running, token):
    r = await running.http.get("/userinfo", headers=_bearer(token))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm=") and 'error="invalid_token"' in challenge


async def test_rfc6750_3_1_revoked_token_is_401_invalid_token(running, person):
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        token = (await exchange(b, await run_flow(b, cid, secret, person))).json()["access_token"]
        assert (await b.post("/revoke", data={"token": token}, headers=basic(cid, secret))).status_code == 200
        r = await b.get("/userinfo", headers=_bearer(token))
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_rfc6750_3_1_token_without_openid_is_403_insufficient_scope(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await running.http.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                                     headers=basic(cid, secret))).json()["access_token"]
    r = await running.http.get("/userinfo", headers=_bearer(token))
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


async def test_rfc6750_3_1_user_token_without_openid_is_403_insufficient_scope(running, person):
    cid, secret = await make_rp(running, scope="api:read")
    async with browser(running) as b:
        token = (await exchange(b, await run_flow(b, cid, secret, person, scope="api:read"))).json()["access_token"]
    r = await running.http.get("/userinfo", headers=_bearer(token))
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"


async def test_rfc6750_2_1_other_authorization_schemes_are_refused(running):
    r = await running.http.get("/userinfo", headers=basic("a", "b"))
    assert r.status_code in (400, 401)
    assert r.json()["error"] in ("invalid_request", "invalid_token")


@pytest.mark.parametrize(("scope", "expected"), [
    ("openid", set()),
    ("openid email", {"email", "email_verified"}),
    ("openid profile", {"name", "given_name", "preferred_username", "updated_at"}),
    ("openid address", {"address"}),
    ("openid phone", {"phone_number", "phone_number_verified"}),
    ("openid profile email address phone", {"name", "given_name", "preferred_username", "updated_at", "email",
                                            "email_verified", "address", "phone_number",
                                            "phone_number_verified"}),
])
async def test_oidc_core_5_4_claims_are_released_by_scope_only(running, person, scope, expected):
    token = await _access_token(running, person, scope)
    body = (await running.http.get("/userinfo", headers=_bearer(token))).json()
    assert set(body) == {"sub", *expected}, body
    if "address" in expected:
        assert body["address"] == ADDRESS
