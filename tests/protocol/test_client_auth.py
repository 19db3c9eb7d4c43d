"""Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2 / §3, OIDC Core §9)."""

from __future__ import annotations

import base64
import time
from urllib.parse import quote_plus

import pytest
from joserfc.jwk import OctKey

from ostiary.config import ClientAuthSettings
from tests.conftest import basic

from ._helpers import (
    CC,
    ISSUER,
    TOKEN_URL,
    JwksServer,
    app_with,
    assert_error,
    assertion,
    assertion_form,
    new_ec_key,
    new_rsa_key,
    public_jwks,
    store_client,
)


def _basic_raw(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
async def pkjwt(running):
    """A private_key_jwt client with its key registered by value (`jwks`)."""
    key = new_ec_key()
    cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key),
                                      scope="api:read")
    return cid, key


# --- client_secret_basic / client_secret_post (RFC 6749 §2.3.1) ---------------------------------------

async def test_rfc6749_2_3_1_client_secret_basic(running):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data=CC, headers=basic(cid, secret))
    assert r.status_code == 200, r.text


async def test_rfc6749_2_3_1_basic_id_and_secret_are_form_urlencoded(running):
    cid, secret = "client:id/ü+%&=", "se:cr%et/ü&=é"
    await running.provider.registry.create({"scope": "api:read", "grant_types": ["client_credentials"]},
                                            client_id=cid, client_secret=secret)
    r = await running.http.post("/token", data=CC, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


async def test_rfc6749_2_3_1_basic_plus_decodes_to_space(running):
    # application/x-www-form-urlencoded (the §2.3.1 encoding) writes a space as "+".
    cid, secret = "client with spaces", "secret with spaces"
    await running.provider.registry.create({"scope": "api:read", "grant_types": ["client_credentials"]},
                                            client_id=cid, client_secret=secret)
    r = await running.http.post("/token", data=CC, headers=_basic_raw(quote_plus(cid), quote_plus(secret)))
    assert r.status_code == 200, r.text


async def test_rfc6749_2_3_1_client_secret_post(running):
    cid, secret = await running.add_client(token_endpoint_auth_method="client_secret_post", scope="api:read")
    r = await running.http.post("/token", data={**CC, "client_id": cid, "client_secret": secret})
    assert r.status_code == 200, r.text


async def test_rfc6749_5_2_wrong_secret_basic_gets_401_and_www_authenticate(running):
    cid, _ = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data=CC, headers=basic(cid, "not-the-secret"))
    assert_error(r, 401, "invalid_client")
    assert r.headers["www-authenticate"].lower().startswith("basic")


async def test_rfc6749_5_2_wrong_secret_post_is_invalid_client(running):
    cid, _ = await running.add_client(token_endpoint_auth_method="client_secret_post", scope="api:read")
    r = await running.http.post("/token", data={**CC, "client_id": cid, "client_secret": "nope"})
    assert_error(r, 400, "invalid_client")


async def test_rfc6749_5_2_unknown_client_is_invalid_client(running):
    r = await running.http.post("/token", data=CC, headers=basic("no-such-client", "whatever"))
    assert_error(r, 401, "invalid_client")
    assert "www-authenticate" in r.headers


async def test_rfc6749_5_2_no_authentication_is_invalid_client(running):
    r = await running.http.post("/token", data=CC)
    assert_error(r, 400, "invalid_client")


async def test_rfc6749_2_3_malformed_basic_is_invalid_client(running):
    for header in ("Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(),
                   "Basic " + base64.b64encode(b"\xff\xfe:x").decode()):
        r = await running.http.post("/token", data=CC, headers={"Authorization": header})
        assert_error(r, 401, "invalid_client")


async def test_rfc6749_2_3_method_other_than_registered_is_invalid_client(running):
    cid, secret = await running.add_client(scope="api:read")  # registered for client_secret_basic
    r = await running.http.post("/token", data={**CC, "client_id": cid, "client_secret": secret})
    assert_error(r, 400, "invalid_client")
    pcid, psecret = await running.add_client(token_endpoint_auth_method="client_secret_post", scope="api:read")
    r = await running.http.post("/token", data=CC, headers=basic(pcid, psecret))
    assert_error(r, 401, "invalid_client")  # HTTP Basic was used: 401 with its challenge (RFC 6749 §5.2)


async def test_rfc6749_2_3_two_methods_at_once_is_invalid_request(running):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data={**CC, "client_id": cid, "client_secret": secret},
                                headers=basic(cid, secret))
    assert_error(r, 400, "invalid_request")


async def test_rfc6749_2_3_secret_and_assertion_at_once_is_invalid_request(running, pkjwt):
    cid, key = pkjwt
    form = assertion_form(assertion(key, cid), client_id=cid, client_secret="x")
    r = await running.http.post("/token", data=form)
    assert_error(r, 400, "invalid_request")


async def test_rfc6749_4_4_public_client_cannot_use_client_credentials(running):
    await store_client(running, client_id="public-cc", token_endpoint_auth_method="none",
                       grant_types=("client_credentials",), scope="api:read")
    r = await running.http.post("/token", data={**CC, "client_id": "public-cc"})
    # RFC 6749 §4.4: confidential clients only; §5.2 unauthorized_client = not allowed this grant type.
    assert_error(r, 400, "unauthorized_client")


async def test_rfc7591_2_public_client_cannot_register_for_client_credentials(running):
    r = await running.http.post("/register", json={"token_endpoint_auth_method": "none",
                                                   "grant_types": ["client_credentials"]},
                                headers={"Authorization": "Bearer initial-token-for-tests"})
    assert_error(r, 400, "invalid_client_metadata")


# --- client_secret_jwt (RFC 7523 §2.2, OIDC Core §9) ------------------------------------------------

async def test_oidc_core_9_client_secret_jwt_hs256(running):
    cid, secret = await running.add_client(token_endpoint_auth_method="client_secret_jwt", scope="api:read")
    key = OctKey.import_key(secret.encode())
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg="HS256")))
    assert r.status_code == 200, r.text


async def test_oidc_core_9_client_secret_jwt_with_wrong_secret_is_invalid_client(running):
    cid, _ = await running.add_client(token_endpoint_auth_method="client_secret_jwt", scope="api:read")
    key = OctKey.import_key(b"a-completely-different-shared-secret-value")
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg="HS256")))
    assert_error(r, 400, "invalid_client")


# --- private_key_jwt (RFC 7523 §3) -------------------------------------------------------------------

async def test_rfc7523_3_private_key_jwt_with_jwks_value(running, pkjwt):
    cid, key = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid)))
    assert r.status_code == 200, r.text


async def test_rfc7523_3_private_key_jwt_rs256_with_jwks_value(running):
    key = new_rsa_key()
    cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key),
                                      scope="api:read")
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg="RS256")))
    assert r.status_code == 200, r.text


async def test_rfc7523_3_private_key_jwt_with_jwks_uri_from_real_server(running):
    key = new_ec_key()
    with JwksServer.serving(public_jwks(key)) as server:
        cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks_uri=server.url,
                                          scope="api:read")
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid)))
        assert r.status_code == 200, r.text
        assert server.hits >= 1
        wrong = new_ec_key()
        r = await running.http.post("/token", data=assertion_form(assertion(wrong, cid)))
        assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_client_id_form_parameter_may_accompany_assertion(running, pkjwt):
    cid, key = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid), client_id=cid))
    assert r.status_code == 200, r.text


async def test_rfc7523_3_aud_token_endpoint_accepted(running, pkjwt):
    cid, key = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, aud=TOKEN_URL)))
    assert r.status_code == 200, r.text


async def test_rfc7523_3_aud_issuer_accepted(running, pkjwt):
    cid, key = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, aud=ISSUER)))
    assert r.status_code == 200, r.text


async def test_rfc7523_3_aud_list_containing_token_endpoint_accepted(running, pkjwt):
    cid, key = pkjwt
    aud = ["https://other.example", TOKEN_URL]
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, aud=aud)))
    assert r.status_code == 200, r.text


async def test_rfc7523_3_other_aud_rejected(running, pkjwt):
    cid, key = pkjwt
    for aud in ("https://other.example/token", ISSUER + "/introspect-nope", ["https://x.example"]):
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid, aud=aud)))
        assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_missing_exp_rejected(running, pkjwt):
    cid, key = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, drop=("exp",))))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_missing_jti_rejected(running, pkjwt):
    cid, key = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, drop=("jti",))))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_expired_rejected(running, pkjwt):
    cid, key = pkjwt
    now = int(time.time())
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, exp=now - 300, iat=now - 600)))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_exp_too_far_ahead_rejected(running, pkjwt):
    cid, key = pkjwt
    max_lifetime = running.settings.client_auth.assertion_max_lifetime
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, lifetime=max_lifetime + 600)))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_exp_limit_follows_assertion_max_lifetime_setting(database_url):
    async with app_with(database_url, client_auth=ClientAuthSettings(assertion_max_lifetime=60)) as app:
        key = new_ec_key()
        cid, _ = await app.add_client(token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key),
                                      scope="api:read")
        r = await app.http.post("/token", data=assertion_form(assertion(key, cid, lifetime=50)))
        assert r.status_code == 200, r.text
        r = await app.http.post("/token", data=assertion_form(assertion(key, cid, lifetime=600)))
        assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_jti_replay_rejected(running, pkjwt):
    cid, key = pkjwt
    value = assertion(key, cid)
    r = await running.http.post("/token", data=assertion_form(value))
    assert r.status_code == 200, r.text
    r = await running.http.post("/token", data=assertion_form(value))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_wrong_signing_key_rejected(running, pkjwt):
    cid, _ = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(new_ec_key(), cid)))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_iss_must_equal_sub(running, pkjwt):
    cid, key = pkjwt
    r = await running.http.post("/token", data=assertion_form(assertion(key, cid, iss="someone-else")))
    assert_error(r, 400, "invalid_client")


async def test_rfc8725_3_1_alg_none_assertion_rejected(running, pkjwt):
    cid, _ = pkjwt

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    payload = f'{{"iss":"{cid}","sub":"{cid}","aud":"{TOKEN_URL}","exp":{now + 60},"jti":"n{now}"}}'
    value = b64(b'{"alg":"none"}') + "." + b64(payload.encode()) + "."
    r = await running.http.post("/token", data=assertion_form(value))
    assert_error(r, 400, "invalid_client")


async def test_rfc7523_3_private_key_jwt_client_using_secret_is_invalid_client(running, pkjwt):
    cid, _ = pkjwt
    r = await running.http.post("/token", data=CC, headers=basic(cid, "anything"))
    assert_error(r, 401, "invalid_client")


async def test_rfc7523_2_2_wrong_assertion_type_is_invalid_request(running, pkjwt):
    cid, key = pkjwt
    form = {**assertion_form(assertion(key, cid)), "client_assertion_type": "urn:example:other"}
    r = await running.http.post("/token", data=form)
    assert_error(r, 400, "invalid_request")


async def test_rfc7523_3_assertion_of_unknown_client_is_invalid_client(running):
    r = await running.http.post("/token", data=assertion_form(assertion(new_ec_key(), "no-such-client")))
    assert_error(r, 400, "invalid_client")
