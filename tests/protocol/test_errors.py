"""Error response shape (RFC 6749 §5.2, RFC 6750 §3, RFC 9110 §15.5.2) at every JSON endpoint."""

from __future__ import annotations

import pytest

from tests.conftest import basic

from ._helpers import CC, assert_error

FORM_ENDPOINTS = ("/token", "/introspect", "/revoke")


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_rfc6749_5_2_error_body_is_json_with_error_and_description(running, path):
    r = await running.http.post(path, json={"token": "x"})
    body = assert_error(r, 400, "invalid_request")
    assert r.headers["content-type"].startswith("application/json")
    assert set(body) <= {"error", "error_description", "error_uri"}
    assert isinstance(body["error_description"], str)
    # RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E
    assert all(0x20 <= ord(c) <= 0x7E for c in body["error_description"])


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_rfc6749_5_2_invalid_client_basic_gets_401_and_www_authenticate(running, path):
    cid, _ = await running.add_client(scope="api:read")
    r = await running.http.post(path, data={**CC, "token": "x"}, headers=basic(cid, "wrong"))
    assert_error(r, 401, "invalid_client")
    challenge = r.headers["www-authenticate"]
    # RFC 6749 §5.2: the challenge names the error, so clients that read it (openid-client) keep the code.
    assert challenge.startswith('Basic realm="ostiary"'), challenge
    assert 'error="invalid_client"' in challenge and 'error_description="' in challenge


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_rfc6749_5_2_invalid_client_without_basic_is_400_without_a_challenge(running, path):
    """client_secret_post or no authentication: 400, since a 401 must carry a challenge (RFC 9110 §15.5.2)
    and inviting Basic would make clients that used another method lose the error code."""
    cid, _ = await running.add_client(scope="api:read", token_endpoint_auth_method="client_secret_post")
    for form in ({"client_id": cid, "client_secret": "wrong"}, {}):
        r = await running.http.post(path, data={**CC, "token": "x", **form})
        assert_error(r, 400, "invalid_client")
        assert "www-authenticate" not in r.headers


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_rfc6749_3_1_repeated_parameter_is_invalid_request_everywhere(running, path):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post(path, content=b"grant_type=client_credentials&token=a&token=b&scope=x&scope=y",
                                headers={**basic(cid, secret), "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "invalid_request")


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_rfc6749_3_2_oversized_body_is_invalid_request(running, path):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post(path, data={**CC, "token": "x" * 70_000}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_rfc6749_3_2_non_utf8_and_nul_are_invalid_request(running, path):
    cid, secret = await running.add_client(scope="api:read")
    headers = {**basic(cid, secret), "Content-Type": "application/x-www-form-urlencoded"}
    for body in (b"grant_type=client_credentials&token=%ff%fe", b"grant_type=client_credentials&token=a%00b",
                 b"grant_type=client_credentials&token=\xc3\xa9"):
        r = await running.http.post(path, content=body, headers=headers)
        assert_error(r, 400, "invalid_request")


async def test_rfc6750_3_invalid_token_at_registration_has_bearer_challenge(running):
    r = await running.http.post("/register", json={}, headers={"Authorization": "Bearer nope"})
    assert_error(r, 401, "invalid_token")
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge


async def test_unknown_path_is_json_404(running):
    r = await running.http.get("/no-such-endpoint")
    assert r.status_code == 404
    assert r.json()["error"]


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_wrong_method_is_405_with_json_error(running, path):
    r = await running.http.put(path, content=b"")
    assert r.status_code == 405
    assert r.json()["error"]


# --- regressions found by tests/protocol/test_fuzz.py ------------------------------------------------

async def test_rfc6749_2_3_1_non_ascii_basic_header_is_invalid_client(running):
    r = await running.http.post("/introspect", data={"token": "x"}, headers={"Authorization": b"Basic \xe9t\xe9"})
    assert_error(r, 401, "invalid_client")


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_rfc6749_2_3_1_nul_in_basic_client_id_is_invalid_client(running, path):
    import base64

    header = "Basic " + base64.b64encode(b"%00:%00").decode()
    r = await running.http.post(path, data={**CC, "token": "x"}, headers={"Authorization": header})
    assert_error(r, 401, "invalid_client")


async def test_rfc7592_2_nul_in_client_id_path_is_refused_before_the_database(running):
    # NUL is refused in any path, query or body before an endpoint sees it (docs/security.md, malformed input)
    for method in ("GET", "PUT", "DELETE"):
        r = await running.http.request(method, "/register/a%00b", json={"client_id": "a\x00b"},
                                       headers={"Authorization": "Bearer x"})
        assert_error(r, 400, "invalid_request")


async def test_rfc7523_3_aud_with_non_string_members_is_invalid_client(running):
    from ._helpers import assertion, assertion_form, new_ec_key, public_jwks

    key = new_ec_key()
    cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key))
    for aud in ([["x"]], [{"a": 1}], [1, 2], {"x": "y"}, None):
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid, aud=aud)))
        assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_jti_with_nul_is_invalid_client(running):
    from ._helpers import assertion, assertion_form, new_ec_key, public_jwks

    key = new_ec_key()
    cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key))
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, jti="a\x00b")))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_long_client_id_and_jti_are_replay_checked_without_error(running):
    from ._helpers import assertion, assertion_form, new_ec_key, public_jwks

    key = new_ec_key()
    cid, _ = await running.add_client(client_id="c" * 255, token_endpoint_auth_method="private_key_jwt",
                                      jwks=public_jwks(key))
    value = assertion(key, cid, jti="j" * 200)
    r = await running.http.post("/token", data=assertion_form(value))
    assert r.status_code == 200, r.text
    r = await running.http.post("/token", data=assertion_form(value))
    assert_error(r, 400, "invalid_client")
