"""Dynamic client registration (RFC 7591 §3) and client configuration (RFC 7592 §2)."""

from __future__ import annotations

import time

import pytest

from ostiary.config import RegistrationSettings
from tests.conftest import basic, settings_for, start_app

from ._helpers import CC, ISSUER, assert_error, client_token, new_ec_key, public_jwks

INITIAL = {"Authorization": "Bearer initial-token-for-tests"}  # settings_for() default registration_token
CC_ONLY = {"grant_types": ["client_credentials"]}


@pytest.fixture(scope="module")
async def running(database_url):
    """The operator offers its API scopes to registrants (docs/clients.md)."""
    registration = RegistrationSettings(api_scopes=("api:read", "api:write"))
    async for r in start_app(settings_for(database_url, registration=registration)):
        yield r


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _register(running, **metadata):
    metadata.setdefault("grant_types", ["client_credentials"])
    r = await running.http.post("/register", json=metadata, headers=INITIAL)
    assert r.status_code == 201, r.text
    return r.json()


async def test_rfc7591_3_without_initial_access_token_is_401_invalid_token(running):
    r = await running.http.post("/register", json={"client_name": "x"})
    assert_error(r, 401, "invalid_token")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_rfc7591_3_wrong_initial_access_token_is_401_invalid_token(running):
    for header in ({"Authorization": "Bearer wrong"}, {"Authorization": "Basic aW5pdGlhbDp4"},
                   {"Authorization": "Bearer "}):
        r = await running.http.post("/register", json={"client_name": "x"}, headers=header)
        assert_error(r, 401, "invalid_token")


async def test_rfc7591_3_2_1_success_is_201_with_credentials_and_configuration_uri(running):
    r = await running.http.post("/register", json={"client_name": "reg", "scope": "api:read", **CC_ONLY},
                                headers=INITIAL)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    for name in ("client_id", "client_secret", "client_secret_expires_at", "registration_access_token",
                 "registration_client_uri", "client_id_issued_at"):
        assert name in body, name
    assert body["client_secret_expires_at"] == 0
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    assert body["client_name"] == "reg"
    assert body["scope"] == "api:read"
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert abs(body["client_id_issued_at"] - time.time()) < 60


async def test_rfc7591_3_2_1_new_client_gets_a_token_at_once(running):
    body = await _register(running, client_name="fresh", scope="api:read")
    token = await client_token(running, body["client_id"], body["client_secret"])
    assert token["scope"] == "api:read"


async def test_rfc7591_3_2_1_private_key_jwt_client_has_no_secret(running):
    body = await _register(running, token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(new_ec_key()))
    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    assert body["jwks"]["keys"]


@pytest.mark.parametrize("metadata", [
    {"token_endpoint_auth_method": "bogus"},
    {"grant_types": ["urn:example:unknown"]},
    {"grant_types": "client_credentials"},
    {"scope": ["api:read"]},
    {"scope": 'bad"scope'},
    {"client_name": 42},
    {"token_endpoint_auth_method": "private_key_jwt"},
    {"jwks": {"keys": "no"}},
    {"jwks_uri": "ftp://keys.example/jwks"},
    {"jwks_uri": "http://[::1"},
    {"access_token_format": "paseto"},
    {"access_token_lifetime": -1},
    {"contacts": "admin@example.com"},
    {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]},
    {"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "ES256"},
], ids=lambda m: ",".join(m))
async def test_rfc7591_3_2_2_invalid_metadata_is_invalid_client_metadata(running, metadata):
    r = await running.http.post("/register", json={**CC_ONLY, **metadata}, headers=INITIAL)
    assert_error(r, 400, "invalid_client_metadata")


async def test_rfc7591_3_2_2_non_object_or_non_json_body_is_invalid_client_metadata(running):
    r = await running.http.post("/register", json=["client_name"], headers=INITIAL)
    assert_error(r, 400, "invalid_client_metadata")
    r = await running.http.post("/register", content=b"{nope", headers={**INITIAL, "Content-Type": "application/json"})
    assert_error(r, 400, "invalid_client_metadata")
    r = await running.http.post("/register", data={"client_name": "x"}, headers=INITIAL)
    assert_error(r, 400, "invalid_client_metadata")


@pytest.mark.parametrize("uri", ["https://app.example/cb#frag", "/relative/cb", "http://app.example/cb",
                                 "javascript:alert(1)", "https://", "http://[::1"])
async def test_rfc7591_3_2_2_bad_redirect_uri_is_invalid_redirect_uri(running, uri):
    r = await running.http.post("/register", json={"redirect_uris": [uri]}, headers=INITIAL)
    assert_error(r, 400, "invalid_redirect_uri")


async def test_rfc7591_2_jwks_and_jwks_uri_together_are_refused(running):
    r = await running.http.post("/register", json={
        **CC_ONLY, "token_endpoint_auth_method": "private_key_jwt", "jwks": public_jwks(new_ec_key()),
        "jwks_uri": "https://keys.example/jwks"}, headers=INITIAL)
    assert_error(r, 400, "invalid_client_metadata")


async def test_rfc7591_2_audiences_with_bad_uri_are_invalid_client_metadata(running):
    for aud in ("relative", "https://a.example/#f", "http://[::1"):
        r = await running.http.post("/register", json={"audiences": [aud], **CC_ONLY}, headers=INITIAL)
        assert_error(r, 400, "invalid_client_metadata")


async def test_rfc7592_2_1_read_with_registration_access_token(running):
    reg = await _register(running, client_name="readable", scope="api:read")
    r = await running.http.get(f"/register/{reg['client_id']}", headers=_bearer(reg["registration_access_token"]))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["client_id"] == reg["client_id"]
    assert body["client_name"] == "readable"
    assert body["registration_client_uri"] == reg["registration_client_uri"]
    assert "client_secret" not in body or body["client_secret"] == reg["client_secret"]


async def test_rfc7592_2_wrong_or_missing_registration_access_token_is_401(running):
    reg = await _register(running, client_name="guarded")
    other = await _register(running, client_name="other")
    url = f"/register/{reg['client_id']}"
    for headers in ({}, _bearer("wrong"), _bearer(other["registration_access_token"]), INITIAL):
        assert_error(await running.http.get(url, headers=headers), 401, "invalid_token")
        assert_error(await running.http.put(url, json={"client_id": reg["client_id"]}, headers=headers),
                     401, "invalid_token")
        assert_error(await running.http.delete(url, headers=headers), 401, "invalid_token")
    r = await running.http.get("/register/no-such-client", headers=_bearer(reg["registration_access_token"]))
    assert_error(r, 401, "invalid_token")
    # and the client still works
    await client_token(running, reg["client_id"], reg["client_secret"])


async def test_rfc7592_2_2_update_replaces_metadata_and_applies_at_once(running):
    reg = await _register(running, client_name="before", scope="api:read api:write")
    await client_token(running, reg["client_id"], reg["client_secret"], scope="api:write")
    r = await running.http.put(reg["registration_client_uri"].removeprefix(ISSUER),
                               json={**CC_ONLY, "client_id": reg["client_id"], "client_name": "after",
                                     "scope": "api:read"},
                               headers=_bearer(reg["registration_access_token"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client_name"] == "after"
    assert body["scope"] == "api:read"
    r = await running.http.post("/token", data={**CC, "scope": "api:write"},
                                headers=basic(reg["client_id"], reg["client_secret"]))
    assert_error(r, 400, "invalid_scope")


async def test_rfc7592_2_2_update_must_include_matching_client_id(running):
    reg = await _register(running, client_name="strict")
    url = f"/register/{reg['client_id']}"
    for body in ({"client_name": "x"}, {"client_id": "someone-else", "client_name": "x"}):
        r = await running.http.put(url, json=body, headers=_bearer(reg["registration_access_token"]))
        assert_error(r, 400, "invalid_client_metadata")


async def test_rfc7592_2_2_update_with_wrong_client_secret_is_refused(running):
    reg = await _register(running, client_name="secretive")
    r = await running.http.put(f"/register/{reg['client_id']}",
                               json={**CC_ONLY, "client_id": reg["client_id"], "client_secret": "wrong"},
                               headers=_bearer(reg["registration_access_token"]))
    assert_error(r, 400, "invalid_client_metadata")


async def test_rfc7592_2_2_update_with_invalid_metadata_is_refused(running):
    reg = await _register(running, client_name="valid")
    r = await running.http.put(f"/register/{reg['client_id']}",
                               json={"client_id": reg["client_id"], "redirect_uris": ["http://evil.example/cb"]},
                               headers=_bearer(reg["registration_access_token"]))
    assert_error(r, 400, "invalid_redirect_uri")


async def test_rfc7592_2_3_delete_gives_204_and_client_can_no_longer_authenticate(running):
    reg = await _register(running, client_name="doomed", scope="api:read")
    token = (await client_token(running, reg["client_id"], reg["client_secret"]))["access_token"]
    url = f"/register/{reg['client_id']}"
    r = await running.http.delete(url, headers=_bearer(reg["registration_access_token"]))
    assert r.status_code == 204
    assert r.content == b""
    r = await running.http.post("/token", data=CC, headers=basic(reg["client_id"], reg["client_secret"]))
    assert_error(r, 401, "invalid_client")
    r = await running.http.get(url, headers=_bearer(reg["registration_access_token"]))
    assert_error(r, 401, "invalid_token")
    rs_id, rs_secret = await running.add_client(client_name="resource server", resource_server=True,
                                                audiences=[ISSUER])
    info = (await running.http.post("/introspect", data={"token": token}, headers=basic(rs_id, rs_secret))).json()
    assert info == {"active": False}


async def test_rfc7591_3_registration_disabled_without_initial_token_or_open(database_url):
    from ._helpers import app_with

    async with app_with(database_url, registration_token="") as app:
        r = await app.http.post("/register", json={"client_name": "x"}, headers=INITIAL)
        assert 400 <= r.status_code < 500
        assert r.json()["error"]
        meta = (await app.http.get("/.well-known/oauth-authorization-server")).json()
        assert "registration_endpoint" not in meta
