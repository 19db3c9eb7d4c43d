"""SMART App Launch 2.2 standalone launch: the patient picker, `aud`, fhirUser, scope granting (v1 and v2),
offline_access and online_access, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.protocol._oidc_flow import REDIRECT, browser, csrf_of, decode_jwt, exchange, form_fields, query_of
from tests.protocol._smart import (
    FHIR,
    bearer,
    load_data,
    names_on,
    patient_name,
    patient_user,
    practitioner,
    smart_app,
    smart_flow,
    smart_tokens,
)


@pytest.fixture(scope="module", autouse=True)
async def sample(running):
    await load_data(running)


# --- launch/patient: the patient picker ------------------------------------------------------------------

async def test_smart_standalone_launch_patient_shows_picker_and_search_by_name(running):
    user = await practitioner(running)
    wanted = patient_name("pat-004")  # "Arun Patel"
    async with browser(running) as b:
        flow, body, claims = await smart_tokens(running, b, user, pick="pat-004", search=wanted.split()[-1])
    assert flow.pages == ["login", "consent", "select_patient", "select_patient"]
    everyone, found = names_on(flow.picker[0]), names_on(flow.picker[1])
    assert len(everyone) > len(found) >= 1
    assert wanted in found and all(wanted.split()[-1] in name for name in found)
    assert body["patient"] == "pat-004" and claims["patient"] == "pat-004"
    assert body["need_patient_banner"] is True
    assert claims["aud"] == FHIR


async def test_smart_standalone_picker_search_with_no_match_says_so(running):
    user = await practitioner(running)
    app = await smart_app(running)
    async with browser(running) as b:
        flow = await smart_flow(b, *app, user, search="Zzyzx")
    assert flow.params == {} and len(flow.picker) == 2
    assert "No patients found" in flow.picker[1] and names_on(flow.picker[1]) == []


async def test_smart_standalone_picker_refuses_an_unknown_patient(running):
    user = await practitioner(running)
    app = await smart_app(running)
    async with browser(running) as b:
        flow = await smart_flow(b, *app, user)
        page = flow.response
        r = await b.post(str(page.url.path) + "/patient", data={"csrf_token": csrf_of(page.text),
                                                                 "patient": "pat-999"})
        assert r.status_code == 400 and "Choose a patient" in r.text
        r = await b.post(str(page.url.path) + "/patient", data={"csrf_token": "forged", "patient": "pat-001"})
        assert r.status_code == 403


async def test_smart_standalone_patient_user_gets_no_picker_and_own_patient(running):
    user = await patient_user(running, "pat-007")
    async with browser(running) as b:
        flow, body, claims = await smart_tokens(running, b, user)
    assert "select_patient" not in flow.pages
    assert body["patient"] == "pat-007" and claims["patient"] == "pat-007"


async def test_smart_standalone_token_reads_chosen_patient_and_not_another(running):
    user = await practitioner(running)
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, pick="pat-002")
        own = await b.get(f"{FHIR}/Patient/pat-002", headers=bearer(body["access_token"]))
        other = await b.get(f"{FHIR}/Patient/pat-003", headers=bearer(body["access_token"]))
    assert own.status_code == 200 and other.status_code == 403


# --- aud (SMART 2.2 §"Authorization request": aud is required) --------------------------------------------

@pytest.mark.parametrize(("aud", "case"), [(None, "missing"), ("https://evil.example/fhir", "wrong"),
                                           ("http://127.0.0.1:8000", "issuer, not the FHIR base")])
async def test_smart_aud_missing_or_wrong_is_invalid_request(running, aud, case):
    user = await practitioner(running)
    app = await smart_app(running)
    async with browser(running) as b:
        flow = await smart_flow(b, *app, user, aud=aud)
    assert flow.pages == [], case  # refused before anyone is asked to log in
    assert flow.params["error"] == "invalid_request" and "aud" in flow.params["error_description"], case


async def test_smart_aud_with_trailing_slash_is_accepted(running):
    user = await practitioner(running)
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, user, aud=FHIR + "/", pick="pat-001")
    assert claims["aud"] == FHIR and body["patient"] == "pat-001"


# --- fhirUser (SMART 2.2 §"fhirUser") -----------------------------------------------------------------------

async def test_smart_fhiruser_in_id_token_and_userinfo_when_granted(running):
    user = await practitioner(running, "prac-03")
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, pick="pat-001")
        _, id_claims = await decode_jwt(b, body["id_token"])
        info = await b.get("/userinfo", headers=bearer(body["access_token"]))
    assert id_claims["fhirUser"] == f"{FHIR}/Practitioner/prac-03"
    assert info.status_code == 200 and info.json()["fhirUser"] == f"{FHIR}/Practitioner/prac-03"


async def test_smart_fhiruser_absent_when_not_requested(running):
    user = await practitioner(running)
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, pick="pat-001", scope="openid launch/patient patient/*.rs")
        _, id_claims = await decode_jwt(b, body["id_token"])
        info = await b.get("/userinfo", headers=bearer(body["access_token"]))
    assert "fhirUser" not in id_claims and "fhirUser" not in info.json()


# --- granting scopes (SMART 2.2 §"Scopes") ---------------------------------------------------------------

async def test_smart_scopes_subset_is_granted_and_returned(running):
    """Asked patient/Observation.cruds, registered patient/*.rs: granted patient/Observation.rs."""
    user = await practitioner(running)
    app = await smart_app(running, scope="patient/*.rs")
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, user, app=app, pick="pat-001",
                                             scope="openid launch/patient patient/Observation.cruds")
        search = await b.get(f"{FHIR}/Observation", headers=bearer(body["access_token"]))
        create = await b.post(f"{FHIR}/Observation", headers=bearer(body["access_token"]), json={
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/pat-001"}})
    assert set(body["scope"].split()) == {"openid", "launch/patient", "patient/Observation.rs"}
    assert set(claims["scope"].split()) == set(body["scope"].split())
    assert search.status_code == 200 and create.status_code == 403


@pytest.mark.parametrize("scope", ["patient/Observation.xyz", "patient/Observation.rcs", "patient/observation.rs",
                                   "patient/Observation", "clinician/Observation.rs", "patient/Observation.rs?x",
                                   "patient/Observation.read?category=laboratory"])
async def test_smart_malformed_scope_is_invalid_scope(running, scope):
    user = await practitioner(running)
    app = await smart_app(running, scope="patient/*.cruds")
    async with browser(running) as b:
        flow = await smart_flow(b, *app, user, scope=f"openid launch/patient {scope}")
    assert flow.params["error"] == "invalid_scope", flow.params


async def test_smart_nothing_grantable_is_invalid_scope(running):
    user = await practitioner(running)
    app = await smart_app(running, scope="patient/Observation.rs")
    async with browser(running) as b:
        flow = await smart_flow(b, *app, user, scope="openid launch/patient patient/Condition.rs")
    assert flow.params["error"] == "invalid_scope"


async def test_smart_v1_scopes_are_granted_in_v1_and_work(running):
    user = await practitioner(running)
    app = await smart_app(running, scope="patient/*.read")
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, app=app, pick="pat-001",
                                        scope="openid launch/patient patient/Observation.read patient/Patient.read")
        obs = await b.get(f"{FHIR}/Observation", headers=bearer(body["access_token"]))
        patient = await b.get(f"{FHIR}/Patient/pat-001", headers=bearer(body["access_token"]))
        condition = await b.get(f"{FHIR}/Condition", headers=bearer(body["access_token"]))
    assert set(body["scope"].split()) == {"openid", "launch/patient", "patient/Observation.read",
                                          "patient/Patient.read"}
    assert obs.status_code == 200 and obs.json()["total"] > 0
    assert all(e["resource"]["subject"]["reference"] == "Patient/pat-001" for e in obs.json()["entry"])
    assert patient.status_code == 200 and condition.status_code == 403


# --- offline_access and online_access (SMART 2.2 §"Scopes for requesting a refresh token") ----------------

async def _log_out(b, id_token: str) -> None:
    page = await b.get("/logout", params={"id_token_hint": id_token})
    r = await b.post("/logout/confirm", data={**form_fields(page.text), "decision": "logout"})
    assert r.status_code in (200, 303), r.text


async def _refresh(b, flow, refresh_token: str):
    return await b.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                        headers=flow.auth())


@pytest.mark.parametrize(("access", "survives_logout"), [("offline_access", True), ("online_access", False)])
async def test_smart_refresh_offline_survives_logout_online_dies_with_session(running, access, survives_logout):
    user = await practitioner(running)
    async with browser(running) as b:
        flow, body, _ = await smart_tokens(running, b, user, pick="pat-005",
                                           scope=f"openid fhirUser launch/patient patient/*.rs {access}")
        assert access in body["scope"].split() and body["refresh_token"]
        r = await _refresh(b, flow, body["refresh_token"])
        assert r.status_code == 200, r.text
        refreshed = r.json()
        assert refreshed["patient"] == "pat-005"  # the launch context comes with every refresh
        _, claims = await decode_jwt(b, refreshed["access_token"])
        assert claims["aud"] == FHIR and claims["patient"] == "pat-005"
        await _log_out(b, body["id_token"])
        r = await _refresh(b, flow, refreshed.get("refresh_token", body["refresh_token"]))
    if survives_logout:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


async def test_smart_no_refresh_token_without_offline_or_online_access(running):
    user = await practitioner(running)
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, pick="pat-001")
    assert "refresh_token" not in body


async def test_smart_redirect_keeps_exact_uri(running):
    user = await practitioner(running)
    async with browser(running) as b:
        flow, _, _ = await smart_tokens(running, b, user, pick="pat-001")
    assert flow.response.headers["location"].startswith(REDIRECT + "?")
    assert query_of(flow.response.headers["location"])["iss"]


async def test_smart_code_exchanged_twice_fails(running):
    user = await practitioner(running)
    app = await smart_app(running)
    async with browser(running) as b:
        flow = await smart_flow(b, *app, user, pick="pat-001")
        assert (await exchange(b, flow)).status_code == 200
        assert (await exchange(b, flow)).json()["error"] == "invalid_grant"
