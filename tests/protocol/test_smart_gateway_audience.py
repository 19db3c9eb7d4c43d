"""SMART apps and the FHIR gateway, on the authorization server's side (issue 8, items 6 and 7): an
admin-registered FHIR base is a valid `aud`, and resource servers learn a user's patients from a signed
all-patients claim or from introspection, never from a list in the JWT."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ostiary.config import SmartSettings
from ostiary.store.access import AccessFacts
from tests.conftest import RunningApp, basic, settings_for, start_app
from tests.protocol._oidc_flow import browser
from tests.protocol._smart import (
    FHIR,
    bearer,
    load_data,
    patient_user,
    practitioner,
    restricted_practitioner,
    smart_app,
    smart_flow,
    smart_tokens,
)

GATEWAY = "https://gateway.example/r4"


@pytest.fixture(scope="module")
async def running(database_url: str) -> AsyncIterator[RunningApp]:
    async for r in start_app(settings_for(database_url, smart=SmartSettings(fhir_bases=(GATEWAY + "/",)))):
        await load_data(r)
        yield r


async def test_smart_aud_admin_registered_gateway_is_accepted_and_becomes_the_token_aud(running):
    user = await patient_user(running, "pat-001")
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, user, aud=GATEWAY)
        assert claims["aud"] == GATEWAY and body["patient"] == "pat-001"
        # a token for the gateway is not a token for the built-in FHIR API
        assert (await b.get(f"{FHIR}/Patient/pat-001", headers=bearer(body["access_token"]))).status_code == 401


async def test_smart_aud_unregistered_fhir_base_is_refused(running):
    # the attack: an app names its own "FHIR server" as aud to get a token it can replay elsewhere
    user = await practitioner(running)
    async with browser(running) as b:
        flow = await smart_flow(b, *await smart_app(running), user, aud="https://gateway.example/other")
    assert flow.params["error"] == "invalid_request"


async def _introspect(running, app: tuple[str, str], token: str) -> dict:
    r = await running.http.post("/introspect", data={"token": token}, headers=basic(*app))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_smart_patient_access_restricted_user_only_through_introspection(running):
    user = await restricted_practitioner(running, ("pat-002", "pat-003"))
    app = await smart_app(running)
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, user, app=app, aud=GATEWAY, scope="openid user/*.rs")
    assert "patient_access" not in claims  # never a list of patient ids in the JWT
    answer = await _introspect(running, app, body["access_token"])
    assert answer["active"] is True and answer["patient_access"] == {"patients": ["pat-002", "pat-003"]}
    # facts are read at introspection time: an administrator's change applies to live tokens
    await running.provider.patient_access.facts.put(AccessFacts(user.id, fhir_user="Practitioner/prac-02"))
    assert (await _introspect(running, app, body["access_token"]))["patient_access"] == {"patients": []}


async def test_smart_patient_access_unrestricted_practitioner_gets_a_signed_all_claim(running):
    user = await practitioner(running)
    app = await smart_app(running)
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, user, app=app, aud=GATEWAY, scope="openid user/*.rs")
        _, _, plain_claims = await smart_tokens(running, b, user, app=app, aud=GATEWAY, scope="openid")
    assert claims["patient_access"] == {"all": True}
    assert "patient_access" not in plain_claims  # only user/ tokens say it
    assert (await _introspect(running, app, body["access_token"]))["patient_access"] == {"all": True}


@pytest.mark.parametrize(("who", "expected"), [("related person", ["pat-003"]), ("no fhirUser", [])])
async def test_smart_patient_access_in_introspection_by_fhir_user_type(running, who, expected):
    from ostiary.fhir.store import FhirStore
    from tests.protocol._oidc_flow import make_user
    from tests.protocol._smart import with_access

    await FhirStore(running.provider.engine).insert_missing(
        [{"resourceType": "RelatedPerson", "id": "rp-1", "patient": {"reference": "Patient/pat-003"}}])
    user = await with_access(running, await make_user(running), "RelatedPerson/rp-1" if who != "no fhirUser" else None)
    app = await smart_app(running)
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, user, app=app, aud=GATEWAY, scope="openid user/*.rs")
    if not expected:  # no clinical entitlement: the user/ scope is not even granted
        answer = await _introspect(running, app, body["access_token"])
        assert body["scope"] == "openid" and "patient_access" not in answer
        return
    assert "patient_access" not in claims
    assert (await _introspect(running, app, body["access_token"]))["patient_access"] == {"patients": expected}
