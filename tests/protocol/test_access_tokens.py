"""Access token format: JWT per RFC 9068 §2.1-2.2, or opaque per client."""

from __future__ import annotations

import time

from ostiary import jwt
from tests.conftest import basic

from ._helpers import ISSUER, client_token, verify_with_jwks


async def test_rfc9068_2_1_header_typ_is_at_jwt_and_kid_is_published(running):
    cid, secret = await running.add_client(scope="api:read")
    body = await client_token(running, cid, secret)
    header = jwt.decode_unverified(body["access_token"]).header
    assert header["typ"] == "at+jwt"
    assert header["alg"] == running.settings.tokens.signing_alg
    kids = {k["kid"] for k in (await running.http.get("/jwks")).json()["keys"]}
    assert header["kid"] in kids


async def test_rfc9068_2_2_required_claims(running):
    cid, secret = await running.add_client(scope="api:read api:write")
    before = int(time.time())
    body = await client_token(running, cid, secret, scope="api:read")
    claims = jwt.decode_unverified(body["access_token"]).claims
    for name in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"):
        assert name in claims, name
    assert claims["iss"] == ISSUER
    assert claims["sub"] == cid  # RFC 9068 §2.2: no end-user, so the client's identifier
    assert claims["client_id"] == cid
    assert claims["scope"] == "api:read"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == body["expires_in"]


async def test_rfc9068_2_2_jti_is_unique_per_token(running):
    cid, secret = await running.add_client(scope="api:read")
    jtis = {jwt.decode_unverified((await client_token(running, cid, secret))["access_token"]).claims["jti"]
            for _ in range(5)}
    assert len(jtis) == 5


async def test_rfc9068_4_token_verifies_against_published_jwks(running):
    cid, secret = await running.add_client(scope="api:read")
    body = await client_token(running, cid, secret)
    verified = await verify_with_jwks(running, body["access_token"])
    assert verified.claims["client_id"] == cid


async def test_rfc9068_2_1_token_verifies_with_plain_joserfc(running):
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    cid, secret = await running.add_client(scope="api:read")
    body = await client_token(running, cid, secret)
    keys = KeySet.import_key_set((await running.http.get("/jwks")).json())
    token = jose_jwt.decode(body["access_token"], keys, algorithms=[running.settings.tokens.signing_alg])
    assert token.header["typ"] == "at+jwt"
    assert token.claims["iss"] == ISSUER


async def test_rfc9068_client_lifetime_sets_exp(running):
    cid, secret = await running.add_client(scope="api:read", access_token_lifetime=120)
    body = await client_token(running, cid, secret)
    assert body["expires_in"] == 120
    claims = jwt.decode_unverified(body["access_token"]).claims
    assert claims["exp"] - claims["iat"] == 120


async def test_rfc7662_opaque_format_per_client_is_not_a_jwt_and_introspects_active(running):
    cid, secret = await running.add_client(scope="api:read", access_token_format="opaque")
    body = await client_token(running, cid, secret)
    token = body["access_token"]
    assert token.count(".") != 2
    try:
        jwt.decode_unverified(token)
    except jwt.JWTInvalid:
        pass
    else:
        raise AssertionError("an opaque token decoded as a JWT")
    r = await running.http.post("/introspect", data={"token": token}, headers=basic(cid, secret))
    info = r.json()
    assert info["active"] is True
    assert info["client_id"] == cid
    assert info["scope"] == "api:read"
