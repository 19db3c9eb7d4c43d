"""Token introspection (RFC 7662 §2.1-2.3)."""

from __future__ import annotations

import asyncio
import time

from ostiary import jwt
from tests.conftest import basic

from ._helpers import ISSUER, assert_error, client_token, store_client


async def _introspect(running, token: str, cid: str, secret: str, **extra: str):
    return await running.http.post("/introspect", data={"token": token, **extra}, headers=basic(cid, secret))


async def test_rfc7662_2_1_no_client_authentication_is_invalid_client_400_without_challenge(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    r = await running.http.post("/introspect", data={"token": token})
    assert_error(r, 400, "invalid_client")
    assert "www-authenticate" not in r.headers  # RFC 9110 §15.5.2: no 401 without a challenge


async def test_rfc7662_2_1_wrong_secret_is_401(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    r = await _introspect(running, token, cid, "wrong")
    assert_error(r, 401, "invalid_client")


async def test_rfc7662_2_1_public_client_may_not_introspect(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    await store_client(running, client_id="public-introspector", token_endpoint_auth_method="none",
                       grant_types=("authorization_code",), redirect_uris=("https://app.example/cb",),
                       response_types=("code",))
    r = await running.http.post("/introspect", data={"token": token, "client_id": "public-introspector"})
    assert_error(r, 400, "invalid_client")


async def test_rfc7662_2_1_missing_token_is_invalid_request(running):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/introspect", data={"token_type_hint": "access_token"}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")


async def test_rfc7662_2_2_unknown_token_is_inactive(running):
    cid, secret = await running.add_client(scope="api:read")
    for token in ("no-such-token", "a.b.c", "x" * 9000):
        r = await _introspect(running, token, cid, secret)
        assert r.status_code == 200
        assert r.json() == {"active": False}
        assert r.headers["cache-control"] == "no-store"


async def test_rfc7662_2_2_active_jwt_gives_full_claims(running):
    cid, secret = await running.add_client(scope="api:read api:write")
    body = await client_token(running, cid, secret, scope="api:read")
    r = await _introspect(running, body["access_token"], cid, secret)
    info = r.json()
    claims = jwt.decode_unverified(body["access_token"]).claims
    assert info["active"] is True
    assert info["token_type"] == "Bearer"
    for name in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"):
        assert info[name] == claims[name], name
    assert info["iss"] == ISSUER


async def test_rfc7662_2_2_active_opaque_gives_full_claims(running):
    cid, secret = await running.add_client(scope="api:read", access_token_format="opaque")
    body = await client_token(running, cid, secret)
    info = (await _introspect(running, body["access_token"], cid, secret)).json()
    assert info["active"] is True
    assert info["client_id"] == cid
    assert info["sub"] == cid
    assert info["scope"] == "api:read"
    assert info["iss"] == ISSUER
    assert info["exp"] > time.time()


async def test_rfc7662_2_1_resource_server_for_the_audience_may_introspect(running):
    cid, secret = await running.add_client(scope="api:read")
    rs_id, rs_secret = await running.add_client(scope="", client_name="resource server", resource_server=True,
                                                audiences=[ISSUER])
    token = (await client_token(running, cid, secret))["access_token"]
    assert (await _introspect(running, token, rs_id, rs_secret)).json()["active"] is True


async def test_rfc7662_2_2_expired_tokens_are_inactive(running):
    jcid, jsecret = await running.add_client(scope="api:read", access_token_lifetime=1)
    ocid, osecret = await running.add_client(scope="api:read", access_token_lifetime=1, access_token_format="opaque")
    jwt_token = (await client_token(running, jcid, jsecret))["access_token"]
    opaque = (await client_token(running, ocid, osecret))["access_token"]
    await asyncio.sleep(2.1)
    assert (await _introspect(running, jwt_token, jcid, jsecret)).json() == {"active": False}
    assert (await _introspect(running, opaque, ocid, osecret)).json() == {"active": False}


async def test_rfc7662_2_2_revoked_tokens_are_inactive(running):
    for fmt in ("jwt", "opaque"):
        cid, secret = await running.add_client(scope="api:read", access_token_format=fmt)
        token = (await client_token(running, cid, secret))["access_token"]
        r = await running.http.post("/revoke", data={"token": token}, headers=basic(cid, secret))
        assert r.status_code == 200
        assert (await _introspect(running, token, cid, secret)).json() == {"active": False}, fmt


async def test_rfc7662_2_2_token_of_deleted_client_is_inactive(running):
    rs_id, rs_secret = await running.add_client(scope="", client_name="resource server", resource_server=True,
                                                audiences=[ISSUER])
    for fmt in ("jwt", "opaque"):
        cid, secret = await running.add_client(scope="api:read", access_token_format=fmt)
        token = (await client_token(running, cid, secret))["access_token"]
        assert (await _introspect(running, token, rs_id, rs_secret)).json()["active"] is True
        await running.provider.registry.delete(cid)
        running.provider.cached_clients.invalidate(cid)
        assert (await _introspect(running, token, rs_id, rs_secret)).json() == {"active": False}, fmt


async def test_rfc7662_2_2_token_signed_by_unknown_key_is_inactive(running):
    from ostiary.keys import SigningKey

    cid, secret = await running.add_client(scope="api:read")
    claims = jwt.decode_unverified((await client_token(running, cid, secret))["access_token"]).claims
    forged = jwt.sign(claims, SigningKey.generate("ES256"), typ="at+jwt")
    assert (await _introspect(running, forged, cid, secret)).json() == {"active": False}


async def test_rfc7662_2_2_token_type_hint_does_not_matter(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    for hint in ("access_token", "refresh_token", "bogus"):
        info = (await _introspect(running, token, cid, secret, token_type_hint=hint)).json()
        assert info["active"] is True, hint
