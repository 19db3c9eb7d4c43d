"""Token revocation (RFC 7009 §2.1-2.2)."""

from __future__ import annotations

from tests.conftest import basic

from ._helpers import ISSUER, assert_error, client_token


async def _revoke(running, token: str, cid: str, secret: str, **extra: str):
    return await running.http.post("/revoke", data={"token": token, **extra}, headers=basic(cid, secret))


async def _active(running, token: str, cid: str, secret: str) -> bool:
    r = await running.http.post("/introspect", data={"token": token}, headers=basic(cid, secret))
    return bool(r.json()["active"])


async def test_rfc7009_2_1_revoked_jwt_is_inactive(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    other = (await client_token(running, cid, secret))["access_token"]
    r = await _revoke(running, token, cid, secret)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert not await _active(running, token, cid, secret)
    assert await _active(running, other, cid, secret)  # only that jti is revoked


async def test_rfc7009_2_1_revoked_opaque_token_is_inactive(running):
    cid, secret = await running.add_client(scope="api:read", access_token_format="opaque")
    token = (await client_token(running, cid, secret))["access_token"]
    assert (await _revoke(running, token, cid, secret)).status_code == 200
    assert not await _active(running, token, cid, secret)


async def test_rfc7009_2_2_unknown_token_gets_200(running):
    cid, secret = await running.add_client(scope="api:read")
    for token in ("no-such-token", "a.b.c", "x" * 9000):
        r = await _revoke(running, token, cid, secret)
        assert r.status_code == 200


async def test_rfc7009_2_1_token_of_another_client_is_refused_and_not_revoked(running):
    owner, owner_secret = await running.add_client(scope="api:read", resource_server=True, audiences=[ISSUER])
    thief, thief_secret = await running.add_client(scope="api:read")
    for fmt in ("jwt", "opaque"):
        cid, secret = await running.add_client(scope="api:read", access_token_format=fmt)
        token = (await client_token(running, cid, secret))["access_token"]
        r = await _revoke(running, token, thief, thief_secret)
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["error"] in ("unauthorized_client", "invalid_request", "invalid_client")
        assert r.headers["cache-control"] == "no-store"
        assert await _active(running, token, owner, owner_secret), fmt


async def test_rfc7009_2_2_revocation_is_idempotent(running):
    for fmt in ("jwt", "opaque"):
        cid, secret = await running.add_client(scope="api:read", access_token_format=fmt)
        token = (await client_token(running, cid, secret))["access_token"]
        for _ in range(3):
            assert (await _revoke(running, token, cid, secret)).status_code == 200
        assert not await _active(running, token, cid, secret)


async def test_rfc7009_2_1_wrong_token_type_hint_still_revokes(running):
    for fmt, hint in (("jwt", "refresh_token"), ("opaque", "refresh_token"), ("jwt", "bogus_hint")):
        cid, secret = await running.add_client(scope="api:read", access_token_format=fmt)
        token = (await client_token(running, cid, secret))["access_token"]
        r = await _revoke(running, token, cid, secret, token_type_hint=hint)
        assert r.status_code == 200, r.text
        assert not await _active(running, token, cid, secret), (fmt, hint)


async def test_rfc7009_2_1_requires_client_authentication(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    r = await running.http.post("/revoke", data={"token": token})
    assert_error(r, 400, "invalid_client")
    r = await _revoke(running, token, cid, "wrong")
    assert_error(r, 401, "invalid_client")  # HTTP Basic: 401 with the challenge
    assert await _active(running, token, cid, secret)


async def test_rfc7009_2_1_missing_token_is_invalid_request(running):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/revoke", data={"token_type_hint": "access_token"}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")


async def test_rfc7009_2_1_json_body_is_invalid_request(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    r = await running.http.post("/revoke", json={"token": token}, headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")
