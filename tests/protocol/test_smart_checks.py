"""Issue 9 item 3: SMART checks modelled on the reference test kit (App Launch 2.2)."""

from __future__ import annotations

import pytest

from tests.conftest import RunningApp
from tests.protocol._helpers import ISSUER, assertion, assertion_form
from tests.protocol._oidc_flow import browser
from tests.protocol._smart import FHIR, bearer, fhir_get, load_data, practitioner, smart_app, smart_tokens
from tests.protocol.test_smart_backend import backend_client


@pytest.fixture(scope="module", autouse=True)
async def sample(running: RunningApp) -> None:
    await load_data(running)


async def test_smart_2_2_configuration_has_the_management_endpoint(running: RunningApp) -> None:
    doc = (await running.http.get("/fhir/.well-known/smart-configuration")).json()
    assert doc["management_endpoint"] == ISSUER + "/account"
    assert (await running.http.get("/account")).status_code == 200  # a page that exists


async def test_smart_backend_services_assertion_exp_more_than_five_minutes_ahead_is_refused(running):
    """SMART Backend Services: exp SHALL be no more than five minutes in the future (30 s leeway)."""
    async with backend_client(running, "ES384", "jwks") as (cid, key):
        far = await running.http.post("/token", data=assertion_form(
            assertion(key, cid, alg="ES384", lifetime=300 + 31 + 30), scope="system/*.rs"))
        assert far.status_code == 400 and far.json()["error"] == "invalid_client", far.text
        near = await running.http.post("/token", data=assertion_form(
            assertion(key, cid, alg="ES384", lifetime=290), scope="system/*.rs"))
        assert near.status_code == 200, near.text


async def test_rfc7523_3_other_clients_keep_the_general_assertion_lifetime(running):
    """An API client (no system/ scopes) signing for ten minutes, as libraries do, still works."""
    async with backend_client(running, "ES384", "jwks", scope="api:read") as (cid, key):
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg="ES384", lifetime=600)))
        assert r.status_code == 200, r.text


async def test_smart_backend_services_jku_must_be_the_registered_jwks_uri(running):
    """The attack: a jku pointing at the attacker's own key set, hoping the server fetches and trusts it."""
    async with backend_client(running, "ES384", "jwks_uri") as (cid, key):
        registered = (await running.provider.clients.get(cid)).jwks_uri
        ok = await running.http.post("/token", data=assertion_form(
            assertion(key, cid, alg="ES384", headers={"jku": registered}), scope="system/*.rs"))
        assert ok.status_code == 200, ok.text
        evil = await running.http.post("/token", data=assertion_form(
            assertion(key, cid, alg="ES384", headers={"jku": "https://attacker.example/jwks"}), scope="system/*.rs"))
        assert evil.status_code == 400 and evil.json()["error"] == "invalid_client"
    async with backend_client(running, "ES384", "jwks") as (cid, key):  # keys by value: no jku at all
        r = await running.http.post("/token", data=assertion_form(
            assertion(key, cid, alg="ES384", headers={"jku": "https://attacker.example/jwks"}), scope="system/*.rs"))
        assert r.status_code == 400


async def _practitioner_tokens(running: RunningApp, practitioner_id: str, scope: str) -> tuple[dict, dict]:
    """A standalone launch by a practitioner user; the token response and the access token's claims."""
    user = await practitioner(running, practitioner_id)
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, user, app=await smart_app(running, scope=scope),
                                             scope=scope, pick="pat-001")
    return body, claims


async def test_smart_fhiruser_resource_is_readable_with_the_access_token(running: RunningApp) -> None:
    """Reference test kit: with fhirUser granted, GET {fhirUser} with the token works (it was 403)."""
    body, claims = await _practitioner_tokens(running, "prac-02", "openid fhirUser launch/patient patient/*.rs")
    assert claims["fhirUser"] == f"{FHIR}/Practitioner/prac-02"
    me = await fhir_get(running.http, "Practitioner/prac-02", body["access_token"])
    assert me.status_code == 200 and me.json()["id"] == "prac-02", me.text
    # Only that one resource: another practitioner stays out of a patient/ token's reach.
    assert (await fhir_get(running.http, "Practitioner/prac-01", body["access_token"])).status_code == 403
    assert (await running.http.get(f"{FHIR}/Practitioner", headers=bearer(body["access_token"]))).status_code == 403


async def test_smart_fhiruser_read_needs_the_fhiruser_scope(running: RunningApp) -> None:
    body, claims = await _practitioner_tokens(running, "prac-03", "openid launch/patient patient/*.rs")
    assert "fhirUser" not in claims
    assert (await fhir_get(running.http, "Practitioner/prac-03", body["access_token"])).status_code == 403
