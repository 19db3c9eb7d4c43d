"""SMART Backend Services (App Launch 2.2 §"Backend Services"): client_credentials with private_key_jwt
(RS384, ES384; keys by `jwks` and by `jwks_uri`), system/ scopes narrowed, short-lived tokens for the FHIR
base, and the FHIR API's `aud` check, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib

import pytest
from joserfc.jwk import ECKey

from tests.protocol._helpers import (
    ISSUER,
    JwksServer,
    assertion,
    assertion_form,
    basic,
    new_rsa_key,
    public_jwks,
    verify_with_jwks,
)
from tests.protocol._smart import FHIR, bearer, load_data


@pytest.fixture(scope="module", autouse=True)
async def sample(running):
    await load_data(running)


def _key(alg: str):
    if alg == "ES384":
        return ECKey.generate_key("P-384", private=True, auto_kid=True)
    return new_rsa_key()


@contextlib.asynccontextmanager
async def backend_client(running, alg: str, by: str, scope: str = "system/*.rs", **meta):
    """A private_key_jwt client whose key is registered by value (`jwks`) or served at a `jwks_uri`."""
    key = _key(alg)
    with contextlib.ExitStack() as stack:
        if by == "jwks":
            keys = {"jwks": public_jwks(key)}
        else:
            server = stack.enter_context(JwksServer.serving(public_jwks(key)))
            keys = {"jwks_uri": server.url}
        cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", scope=scope,
                                          client_name="Backend", **keys, **meta)
        yield cid, key


@pytest.mark.parametrize("by", ["jwks", "jwks_uri"])
@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_smart_backend_services_private_key_jwt_token_reads_fhir(running, alg, by):
    async with backend_client(running, alg, by) as (cid, key):
        r = await running.http.post("/token", data=assertion_form(
            assertion(key, cid, alg=alg, aud=ISSUER + "/token"), scope="system/*.rs"))
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "system/*.rs"
    assert 0 < body["expires_in"] <= 300
    claims = (await verify_with_jwks(running, body["access_token"])).claims
    assert claims["aud"] == FHIR and claims["client_id"] == cid and claims["exp"] - claims["iat"] <= 300
    bundle = await running.http.get(f"{FHIR}/Patient", headers=bearer(body["access_token"]))
    assert bundle.status_code == 200, bundle.text
    assert bundle.json()["resourceType"] == "Bundle" and bundle.json()["total"] == 30


async def test_smart_backend_services_scopes_narrowed_to_registration(running):
    async with backend_client(running, "RS384", "jwks") as (cid, key):
        r = await running.http.post("/token", data=assertion_form(
            assertion(key, cid, alg="RS384"), scope="system/Patient.cruds system/Observation.rs"))
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"system/Patient.rs", "system/Observation.rs"}
    token = r.json()["access_token"]
    create = await running.http.post(f"{FHIR}/Patient", json={"resourceType": "Patient"}, headers=bearer(token))
    condition = await running.http.get(f"{FHIR}/Condition", headers=bearer(token))
    assert create.status_code == 403 and condition.status_code == 403


async def test_smart_backend_services_lifetime_capped_even_for_long_lived_clients(running):
    async with backend_client(running, "ES384", "jwks", access_token_lifetime=3600) as (cid, key):
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg="ES384"),
                                                                  scope="system/Observation.rs"))
    assert r.status_code == 200 and r.json()["expires_in"] <= 300


async def test_smart_backend_services_unregistered_scope_only_is_invalid_scope(running):
    async with backend_client(running, "ES384", "jwks", scope="system/Observation.rs") as (cid, key):
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg="ES384"),
                                                                  scope="system/Patient.rs"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


async def test_smart_backend_services_wrong_key_is_invalid_client(running):
    async with backend_client(running, "RS384", "jwks") as (cid, _):
        r = await running.http.post("/token", data=assertion_form(assertion(new_rsa_key(), cid, alg="RS384"),
                                                                  scope="system/*.rs"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


async def test_smart_fhir_refuses_token_without_system_scopes_403(running):
    """A token for the FHIR base but with no FHIR resource scope: authenticated, not allowed."""
    cid, secret = await running.add_client(scope="api:read", audiences=[FHIR])
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": "api:read",
                                                "resource": FHIR}, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    claims = (await verify_with_jwks(running, r.json()["access_token"])).claims
    assert claims["aud"] == FHIR
    fhir = await running.http.get(f"{FHIR}/Patient", headers=bearer(r.json()["access_token"]))
    assert fhir.status_code == 403 and fhir.json()["resourceType"] == "OperationOutcome"


async def test_smart_fhir_refuses_token_for_the_issuer_401(running):
    """RFC 9068 §4: a token whose aud is not the FHIR base is refused, even with system/ scopes."""
    cid, secret = await running.add_client(scope="system/*.rs", audiences=[ISSUER], system_scopes_with_secret=True)
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": "system/*.rs",
                                                "resource": ISSUER}, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    assert (await verify_with_jwks(running, r.json()["access_token"])).claims["aud"] == ISSUER
    fhir = await running.http.get(f"{FHIR}/Patient", headers=bearer(r.json()["access_token"]))
    assert fhir.status_code == 401 and fhir.headers["www-authenticate"].startswith("Bearer")


async def test_smart_fhir_refuses_plain_api_token_401(running):
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data={"grant_type": "client_credentials"}, headers=basic(cid, secret))
    fhir = await running.http.get(f"{FHIR}/Patient", headers=bearer(r.json()["access_token"]))
    assert fhir.status_code == 401


async def test_smart_fhir_refuses_revoked_backend_token_401(running):
    cid, secret = await running.add_client(scope="system/*.rs", token_endpoint_auth_method="client_secret_basic",
                                           system_scopes_with_secret=True,
                                           access_token_format="opaque")
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                                headers=basic(cid, secret))
    token = r.json()["access_token"]
    assert (await running.http.get(f"{FHIR}/Patient", headers=bearer(token))).status_code == 200
    await running.http.post("/revoke", data={"token": token}, headers=basic(cid, secret))
    assert (await running.http.get(f"{FHIR}/Patient", headers=bearer(token))).status_code == 401
