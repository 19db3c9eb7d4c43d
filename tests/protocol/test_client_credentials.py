"""The client_credentials grant (RFC 6749 §4.4, §3.3) with resource indicators (RFC 8707 §2)."""

from __future__ import annotations

import pytest

from ostiary import jwt
from ostiary.config import TokenSettings
from ostiary.errors import InvalidClientMetadata
from tests.conftest import basic

from ._helpers import CC, ISSUER, app_with, assert_error, client_token

API_A, API_B = "https://a.example/api", "https://b.example/api"


async def test_rfc6749_4_4_3_response_has_token_type_expires_in_and_scope(running):
    cid, secret = await running.add_client(scope="api:read api:write")
    body = await client_token(running, cid, secret, scope="api:read")
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["scope"] == "api:read"
    assert "refresh_token" not in body  # RFC 6749 §4.4.3: SHOULD NOT be included


async def test_rfc6749_3_3_scope_not_allowed_for_client_is_invalid_scope(running):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data={**CC, "scope": "api:read api:admin"}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_scope")


async def test_rfc6749_3_3_malformed_scope_is_invalid_scope(running):
    cid, secret = await running.add_client(scope="api:read")
    for scope in ('api:"read"', "api\\read", "api:r\u00e9ad", "a\tb"):
        r = await running.http.post("/token", data={**CC, "scope": scope}, headers=basic(cid, secret))
        assert_error(r, 400, "invalid_scope")


async def test_rfc6749_3_3_no_scope_gives_clients_default_scope(running):
    cid, secret = await running.add_client(scope="api:read api:write")
    body = await client_token(running, cid, secret)
    assert set(body["scope"].split()) == {"api:read", "api:write"}
    claims = jwt.decode_unverified(body["access_token"]).claims
    assert set(claims["scope"].split()) == {"api:read", "api:write"}


async def test_rfc6749_3_3_granted_scope_is_in_response_and_token(running):
    cid, secret = await running.add_client(scope="api:read api:write")
    body = await client_token(running, cid, secret, scope="api:write api:read")
    assert set(body["scope"].split()) == {"api:read", "api:write"}
    assert set(jwt.decode_unverified(body["access_token"]).claims["scope"].split()) == {"api:read", "api:write"}


async def test_rfc6749_3_3_extra_spaces_between_scope_tokens_are_tolerated(running):
    cid, secret = await running.add_client(scope="api:read api:write")
    body = await client_token(running, cid, secret, scope="api:read  api:write ")
    assert set(body["scope"].split()) == {"api:read", "api:write"}


async def test_oidc_openid_on_client_credentials_accepted_by_default_without_id_token(running):
    cid, secret = await running.add_client(scope="api:read")
    body = await client_token(running, cid, secret, scope="openid api:read")
    assert "id_token" not in body
    assert set(body["scope"].split()) == {"openid", "api:read"}


async def test_oidc_openid_on_client_credentials_ignore_mode_drops_it(database_url):
    async with app_with(database_url, tokens=TokenSettings(openid_on_client_credentials="ignore")) as app:
        cid, secret = await app.add_client(scope="api:read")
        body = await client_token(app, cid, secret, scope="openid api:read")
        assert body["scope"] == "api:read"
        assert "id_token" not in body
        assert "openid" not in jwt.decode_unverified(body["access_token"]).claims["scope"].split()


async def test_oidc_openid_on_client_credentials_reject_mode_is_invalid_scope(database_url):
    async with app_with(database_url, tokens=TokenSettings(openid_on_client_credentials="reject")) as app:
        cid, secret = await app.add_client(scope="api:read")
        r = await app.http.post("/token", data={**CC, "scope": "openid api:read"}, headers=basic(cid, secret))
        assert_error(r, 400, "invalid_scope")


async def test_rfc8707_2_resource_becomes_aud(running):
    cid, secret = await running.add_client(scope="api:read", audiences=[API_A, API_B])
    body = await client_token(running, cid, secret, resource=API_B)
    assert jwt.decode_unverified(body["access_token"]).claims["aud"] == API_B


async def test_rfc8707_2_several_resources_give_list_aud(running):
    cid, secret = await running.add_client(scope="api:read", audiences=[API_A, API_B])
    r = await running.http.post("/token", data={**CC, "resource": [API_A, API_B]}, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    assert jwt.decode_unverified(r.json()["access_token"]).claims["aud"] == [API_A, API_B]


async def test_rfc8707_2_without_resource_aud_is_first_registered_audience(running):
    cid, secret = await running.add_client(scope="api:read", audiences=[API_A, API_B])
    body = await client_token(running, cid, secret)
    assert jwt.decode_unverified(body["access_token"]).claims["aud"] == API_A


async def test_rfc8707_2_without_resource_or_audiences_aud_is_issuer(running):
    cid, secret = await running.add_client(scope="api:read")
    body = await client_token(running, cid, secret)
    assert jwt.decode_unverified(body["access_token"]).claims["aud"] == ISSUER


async def test_rfc8707_2_unregistered_resource_is_invalid_target(running):
    cid, secret = await running.add_client(scope="api:read", audiences=[API_A])
    r = await running.http.post("/token", data={**CC, "resource": "https://evil.example/api"},
                                headers=basic(cid, secret))
    assert_error(r, 400, "invalid_target")
    r = await running.http.post("/token", data={**CC, "resource": [API_A, "https://evil.example/api"]},
                                headers=basic(cid, secret))
    assert_error(r, 400, "invalid_target")


async def test_rfc8707_2_resource_with_fragment_is_invalid_target(running):
    cid, secret = await running.add_client(scope="api:read", audiences=[API_A])
    r = await running.http.post("/token", data={**CC, "resource": API_A + "#frag"}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_target")


async def test_rfc8707_2_relative_resource_is_invalid_target(running):
    cid, secret = await running.add_client(scope="api:read", audiences=[API_A])
    for resource in ("/api", "api", "//a.example/api"):
        r = await running.http.post("/token", data={**CC, "resource": resource}, headers=basic(cid, secret))
        assert_error(r, 400, "invalid_target")


async def test_rfc8707_2_unparseable_resource_is_invalid_target(running):
    cid, secret = await running.add_client(scope="api:read", audiences=[API_A])
    r = await running.http.post("/token", data={**CC, "resource": "http://[::1"}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_target")


# --- the openid rule per client (issue 9 item 7): an operator's choice overrides the server's --------

async def test_oidc_openid_on_client_credentials_per_client_reject_overrides_server_accept(running):
    """A platform whose clients must never see openid without a user: set on that client only."""
    strict, strict_secret = await running.add_client(scope="api:read", openid_on_client_credentials="reject")
    r = await running.http.post("/token", data={**CC, "scope": "openid api:read"}, headers=basic(strict, strict_secret))
    assert_error(r, 400, "invalid_scope")
    other, other_secret = await running.add_client(scope="api:read")  # the server default (accept) still applies
    assert "openid" in (await client_token(running, other, other_secret, scope="openid api:read"))["scope"].split()


async def test_oidc_openid_on_client_credentials_per_client_ignore_and_accept_override_server(database_url):
    async with app_with(database_url, tokens=TokenSettings(openid_on_client_credentials="reject")) as app:
        ignoring, s1 = await app.add_client(scope="api:read", openid_on_client_credentials="ignore")
        assert (await client_token(app, ignoring, s1, scope="openid api:read"))["scope"] == "api:read"
        accepting, s2 = await app.add_client(scope="api:read", openid_on_client_credentials="accept")
        body = await client_token(app, accepting, s2, scope="openid api:read")
        assert set(body["scope"].split()) == {"openid", "api:read"} and "id_token" not in body


async def test_oidc_openid_on_client_credentials_unknown_value_is_invalid_client_metadata(running):
    with pytest.raises(InvalidClientMetadata, match="openid_on_client_credentials"):
        await running.add_client(scope="api:read", openid_on_client_credentials="maybe")
