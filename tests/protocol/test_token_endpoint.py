"""Token endpoint request rules (RFC 6749 §3.1, §3.2, §5.1, §5.2; RFC 8707 §2)."""

from __future__ import annotations

from tests.conftest import basic

from ._helpers import CC, assert_error, store_client


async def _client(running, scope: str = "api:read api:write"):
    return await running.add_client(scope=scope, client_name="token-endpoint")


async def test_rfc6749_3_2_json_body_is_invalid_request(running):
    cid, secret = await _client(running)
    r = await running.http.post("/token", json=CC, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")


async def test_rfc6749_3_2_body_without_content_type_is_invalid_request(running):
    cid, secret = await _client(running)
    r = await running.http.post("/token", content=b"grant_type=client_credentials", headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")


async def test_rfc6749_3_2_form_with_charset_parameter_is_accepted(running):
    cid, secret = await _client(running)
    headers = {**basic(cid, secret), "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    r = await running.http.post("/token", content=b"grant_type=client_credentials", headers=headers)
    assert r.status_code == 200, r.text


async def test_rfc6749_3_1_repeated_parameter_is_invalid_request(running):
    cid, secret = await _client(running)
    body = b"grant_type=client_credentials&scope=api:read&scope=api:write"
    r = await running.http.post("/token", content=body, headers={
        **basic(cid, secret), "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "invalid_request")


async def test_rfc6749_3_1_repeated_grant_type_is_invalid_request(running):
    cid, secret = await _client(running)
    body = b"grant_type=client_credentials&grant_type=client_credentials"
    r = await running.http.post("/token", content=body, headers={
        **basic(cid, secret), "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "invalid_request")


async def test_rfc8707_2_resource_may_repeat(running):
    a, b = "https://a.example/api", "https://b.example/api"
    cid, secret = await running.add_client(scope="api:read", audiences=[a, b])
    body = (b"grant_type=client_credentials&resource=https%3A%2F%2Fa.example%2Fapi"
            b"&resource=https%3A%2F%2Fb.example%2Fapi")
    r = await running.http.post("/token", content=body, headers={
        **basic(cid, secret), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text


async def test_rfc6749_5_2_missing_grant_type_is_invalid_request(running):
    cid, secret = await _client(running)
    r = await running.http.post("/token", data={"scope": "api:read"}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")


async def test_rfc6749_5_2_unknown_grant_type_is_unsupported_grant_type(running):
    cid, secret = await _client(running)
    r = await running.http.post("/token", data={"grant_type": "urn:example:nope"}, headers=basic(cid, secret))
    assert_error(r, 400, "unsupported_grant_type")


async def test_rfc6749_5_2_client_not_registered_for_grant_is_unauthorized_client(running):
    await store_client(running, client_id="code-only", secret="code-only-secret",
                       grant_types=("authorization_code",), redirect_uris=("https://app.example/cb",),
                       response_types=("code",), scope="api:read")
    r = await running.http.post("/token", data=CC, headers=basic("code-only", "code-only-secret"))
    assert_error(r, 400, "unauthorized_client")


async def test_rfc6749_5_1_success_response_has_cache_control_no_store(running):
    cid, secret = await _client(running)
    r = await running.http.post("/token", data=CC, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    assert r.headers["content-type"].startswith("application/json")


async def test_rfc6749_5_1_error_responses_have_cache_control_no_store(running):
    cid, secret = await _client(running)
    for r in (
        await running.http.post("/token", data=CC, headers=basic(cid, "wrong")),
        await running.http.post("/token", data={"grant_type": "nope"}, headers=basic(cid, secret)),
        await running.http.post("/token", json=CC),
        await running.http.post("/token", data={**CC, "scope": "not-allowed"}, headers=basic(cid, secret)),
    ):
        assert 400 <= r.status_code < 500
        assert r.headers["cache-control"] == "no-store", r.status_code


async def test_rfc6749_3_1_empty_grant_type_is_treated_as_absent(running):
    cid, secret = await _client(running)
    r = await running.http.post("/token", data={"grant_type": ""}, headers=basic(cid, secret))
    body = assert_error(r, 400, "invalid_request")
    assert "grant_type" in body.get("error_description", "")


async def test_rfc6749_3_1_empty_scope_is_treated_as_absent(running):
    cid, secret = await _client(running, scope="api:read api:write")
    r = await running.http.post("/token", data={**CC, "scope": ""}, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"api:read", "api:write"}


async def test_rfc6749_3_1_empty_client_secret_with_basic_is_not_a_second_method(running):
    cid, secret = await _client(running)
    r = await running.http.post("/token", data={**CC, "client_secret": "", "client_id": ""},
                                headers=basic(cid, secret))
    assert r.status_code == 200, r.text


async def test_rfc6749_3_2_get_is_not_allowed(running):
    r = await running.http.get("/token")
    assert r.status_code == 405
    assert "error" in r.json()
