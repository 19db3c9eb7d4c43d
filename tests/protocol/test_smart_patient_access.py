"""Who sees which patient (issue 8, items 1-3 and 5): entitlements by fhirUser type, user/ scopes intersected
with them, the patient in context (none, the only one, the picker), and writes that stay in the compartment.

Each test names the attack it stops and checks the legitimate path beside it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import pytest

from ostiary.fhir.store import FhirStore
from ostiary.store import Client
from tests.protocol._oidc_flow import REDIRECT, browser, csrf_of, exchange, make_user
from tests.protocol._smart import (
    FHIR,
    bearer,
    create_launch,
    ehr_token,
    load_data,
    names_on,
    patient_name,
    patient_user,
    practitioner,
    restricted_practitioner,
    smart_app,
    smart_flow,
    smart_tokens,
    with_access,
)


@pytest.fixture(scope="module", autouse=True)
async def sample(running):
    await load_data(running)
    await FhirStore(running.provider.engine).insert_missing([
        {"resourceType": "RelatedPerson", "id": "rp-1", "patient": {"reference": "Patient/pat-003"}},
        {"resourceType": "Group", "id": "ward-4", "type": "person", "actual": True,
         "member": [{"entity": {"reference": "Patient/pat-004"}}, {"entity": {"reference": "Patient/pat-005"}},
                    {"entity": {"reference": "Patient/pat-006"}, "inactive": True}]},
    ])


async def _ids(b: Any, token: str, path: str = "Patient?_count=100") -> set[str]:
    r = await b.get(f"{FHIR}/{path}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", [])}


# --- item 2: what a user may see, through user/ scopes and the built-in FHIR API ---------------------------

async def test_smart_user_scope_patient_user_reads_only_her_own_patient(running):
    # the attack: a patient user with user/*.rs read all 30 patients
    user = await patient_user(running, "pat-007")
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, scope="openid fhirUser user/*.rs")
        assert await _ids(b, body["access_token"]) == {"pat-007"}
        assert (await b.get(f"{FHIR}/Patient/pat-001", headers=bearer(body["access_token"]))).status_code == 403
        own = await _ids(b, body["access_token"], "Observation?_count=500")
        assert own and all(i.startswith("obs-007-") for i in own)
        assert (await b.get(f"{FHIR}/Practitioner/prac-01", headers=bearer(body["access_token"]))).status_code == 200


async def test_smart_user_scope_patient_user_also_sees_admin_linked_patients(running):
    user = await patient_user(running, "pat-007", patients=("pat-008",))
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, scope="openid fhirUser user/Patient.rs")
        assert await _ids(b, body["access_token"]) == {"pat-007", "pat-008"}


async def test_smart_user_scope_related_person_sees_the_referenced_patient_only(running):
    user = await with_access(running, await make_user(running), "RelatedPerson/rp-1")
    async with browser(running) as b:
        flow, body, _ = await smart_tokens(running, b, user,
                                           scope="openid fhirUser launch/patient patient/*.rs user/Patient.rs")
        assert "select_patient" not in flow.pages and body["patient"] == "pat-003"  # the one patient: no picker
        assert await _ids(b, body["access_token"]) == {"pat-003"}


async def test_smart_user_scope_restricted_practitioner_sees_listed_and_group_patients(running):
    # the default outside the demo is none; an administrator lists patients or a Group
    user = await restricted_practitioner(running, ("pat-010",), group="ward-4")
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, scope="openid fhirUser user/*.rs")
        assert await _ids(b, body["access_token"]) == {"pat-010", "pat-004", "pat-005"}  # inactive member: no
        assert (await b.get(f"{FHIR}/Encounter?patient=pat-001", headers=bearer(body["access_token"]))).json()[
            "total"] == 0


async def test_smart_user_scope_unrestricted_practitioner_sees_everyone(running):
    user = await practitioner(running)
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, scope="openid fhirUser user/*.rs")
        assert len(await _ids(b, body["access_token"])) == 30


@pytest.mark.parametrize("who", ["no fhirUser", "Person", "unresolvable", "default practitioner"])
async def test_smart_user_without_clinical_entitlement_gets_no_clinical_scope(running, who):
    # fail closed: no fhirUser, a Person, a reference that does not resolve, or a practitioner with no list
    fhir_user = {"no fhirUser": None, "Person": "Person/x", "unresolvable": "Patient/gone",
                 "default practitioner": "Practitioner/prac-03"}[who]
    user = await with_access(running, await make_user(running), fhir_user)
    async with browser(running) as b:
        flow, body, claims = await smart_tokens(
            running, b, user, scope="openid fhirUser launch/patient patient/*.rs user/*.rs")
        assert flow.pages == ["login", "consent"]  # never a picker
        assert set(body["scope"].split()) == {"openid", "fhirUser"} and "patient" not in body
        assert "patient" not in claims
        r = await b.get(f"{FHIR}/Patient", headers=bearer(body["access_token"]))
        assert r.status_code == 403


async def test_smart_fhiruser_claim_comes_from_access_facts_not_profile(running):
    user = await practitioner(running, "prac-04")
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, scope="openid fhirUser")
        info = (await b.get("/userinfo", headers=bearer(body["access_token"]))).json()
    assert info["fhirUser"] == f"{FHIR}/Practitioner/prac-04"


async def test_smart_user_write_scopes_need_a_trusted_registrant(running):
    # the attack: a dynamically registered app got user/ writes through a normal login
    user = await practitioner(running)
    # registered openly and holding user/*.cruds (say, from before the trust rules): writes still withheld
    secret = "s3cret-" + "x" * 40
    client = Client(client_id=f"open-{secrets.token_hex(4)}", client_name="Self-registered",
                    grant_types=("authorization_code",), response_types=("code",), redirect_uris=(REDIRECT,),
                    scope="openid user/*.cruds", secret_digest=hashlib.sha256(secret.encode()).hexdigest(),
                    trust_level="open")
    await running.provider.clients.create(client)
    trusted = await smart_app(running, scope="openid user/*.cruds")
    async with browser(running) as b:
        _, reduced, _ = await smart_tokens(running, b, user, app=(client.client_id, secret),
                                           scope="openid user/*.cruds user/Observation.write")
        _, full, _ = await smart_tokens(running, b, user, app=trusted, scope="openid user/*.cruds")
    assert set(reduced["scope"].split()) == {"openid", "user/*.rs"}
    assert set(full["scope"].split()) == {"openid", "user/*.cruds"}


# --- item 3: the patient in context -----------------------------------------------------------------------

async def test_smart_context_patient_user_never_sees_the_picker(running):
    user = await patient_user(running, "pat-011")
    async with browser(running) as b:
        flow, body, _ = await smart_tokens(running, b, user)
    assert "select_patient" not in flow.pages and body["patient"] == "pat-011"


async def test_smart_context_picker_lists_exactly_the_allowed_patients_without_preselection(running):
    allowed = ("pat-012", "pat-013", "pat-014")
    user = await restricted_practitioner(running, allowed)
    async with browser(running) as b:
        flow = await smart_flow(b, *await smart_app(running), user)
    page = flow.picker[0]
    assert sorted(names_on(page)) == sorted(patient_name(p) for p in allowed)
    assert not re.search(r"<input[^>]*checked", page) and 'rel="next"' not in page


async def test_smart_context_picker_refuses_a_patient_outside_the_allowed_set(running):
    # the attack: posting another patient's id to the picker during one's own login
    user = await restricted_practitioner(running, ("pat-012", "pat-013"))
    async with browser(running) as b:
        flow = await smart_flow(b, *await smart_app(running), user)
        url = str(flow.response.url.path) + "/patient"
        r = await b.post(url, data={"csrf_token": csrf_of(flow.response.text), "patient": "pat-001"})
        assert r.status_code == 400 and "Choose a patient" in r.text
        r = await b.post(url, data={"csrf_token": csrf_of(flow.response.text), "patient": "pat-013"})
        assert r.status_code == 303


async def test_smart_context_picker_answer_is_refused_when_no_picker_was_asked(running):
    # the attack: a patient user posted another patient's id to the picker endpoint during her own login
    user = await patient_user(running, "pat-007")
    cid, secret = await smart_app(running)
    async with browser(running) as b:
        flow = await smart_flow(b, cid, secret, user, pick=None, prompt="consent")
        assert "code" in flow.params and flow.pages == ["login", "consent"]
        # replay the whole thing, stopping at consent to post a picker answer there
        r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": REDIRECT,
                                              "response_type": "code", "scope": "launch/patient patient/*.rs",
                                              "aud": FHIR, "prompt": "consent", "code_challenge": "x" * 43,
                                              "code_challenge_method": "S256"})
        page = await b.get(r.headers["location"])
        assert 'value="approve"' in page.text
        r = await b.post(str(page.url.path) + "/patient", data={"csrf_token": csrf_of(page.text),
                                                                 "patient": "pat-001"})
        assert r.status_code == 400 and "No patient choice" in r.text


async def test_smart_context_picker_pages_through_all_patients_of_an_unrestricted_practitioner(running):
    user = await practitioner(running)
    async with browser(running) as b:
        flow = await smart_flow(b, *await smart_app(running), user)
        first = names_on(flow.picker[0])
        assert len(first) == 25 and 'rel="next"' in flow.picker[0]
        second = await b.get(str(flow.response.url.path), params={"page": "1"})
        rest = names_on(second.text)
    assert len(rest) == 5 and not set(rest) & set(first) and 'rel="next"' not in second.text


async def test_smart_context_prompt_none_with_a_picker_needed_is_interaction_required(running):
    user = await restricted_practitioner(running, ("pat-012", "pat-013"))
    cid, secret = await smart_app(running)
    async with browser(running) as b:
        await smart_flow(b, cid, secret, user, pick="pat-012")
        flow = await smart_flow(b, cid, secret, user, prompt="none")
    assert flow.params.get("error") == "interaction_required"


# --- item 5: writes stay in the compartment, with real tokens ----------------------------------------------

def _observation(subject: str, performer: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                           "subject": {"reference": f"Patient/{subject}"}}
    if performer:
        out["performer"] = [{"reference": f"Patient/{performer}"}]
    return out


async def test_fhir_r4_compartment_patient_write_token_cannot_file_into_another_chart(running):
    # the attack: a patient/ write token filed an Observation in another chart by naming itself performer,
    # and moved its own Condition to another patient
    user = await patient_user(running, "pat-015")
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, scope="openid launch/patient patient/*.cruds")
        auth = bearer(body["access_token"])
        r = await b.post(f"{FHIR}/Observation", json=_observation("pat-016", performer="pat-015"), headers=auth)
        assert r.status_code == 403
        r = await b.post(f"{FHIR}/Observation", json=_observation("pat-015"), headers=auth)
        assert r.status_code == 201
        condition = (await b.get(f"{FHIR}/Condition?patient=pat-015", headers=auth)).json()["entry"][0]["resource"]
        moved = {**condition, "subject": {"reference": "Patient/pat-016"}}
        assert (await b.put(f"{FHIR}/Condition/{condition['id']}", json=moved, headers=auth)).status_code == 403
        kept = {**condition, "note": [{"text": "seen"}]}
        assert (await b.put(f"{FHIR}/Condition/{condition['id']}", json=kept, headers=auth)).status_code == 200
        assert (await b.post(f"{FHIR}/Patient", json={"resourceType": "Patient"}, headers=auth)).status_code == 403
        other = (await b.get(f"{FHIR}/Patient/pat-015", headers=auth)).json()
        assert (await b.put(f"{FHIR}/Patient/pat-015", json=other, headers=auth)).status_code == 200


async def test_exchange_gives_tokens_for_the_settled_scope(running):
    """The code carries the reduced scope (not what the app asked): the token endpoint cannot widen it."""
    user = await restricted_practitioner(running)
    cid, secret = await smart_app(running)
    async with browser(running) as b:
        flow = await smart_flow(b, cid, secret, user, scope="openid patient/*.rs user/*.rs launch/patient")
        r = await exchange(b, flow)
    assert r.status_code == 200 and r.json()["scope"] == "openid"


async def test_smart_access_facts_changes_apply_to_live_tokens(running):
    # the attack: a token (or its refresh) outliving the administrator's decision to take a patient away
    user = await restricted_practitioner(running, ("pat-017",))
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, scope="openid launch/patient patient/*.rs user/*.rs")
        auth = bearer(body["access_token"])
        assert body["patient"] == "pat-017"
        assert (await b.get(f"{FHIR}/Patient/pat-017", headers=auth)).status_code == 200
        await with_access(running, user, "Practitioner/prac-02", patients=("pat-018",))
        assert (await b.get(f"{FHIR}/Patient/pat-017", headers=auth)).status_code == 403
        assert (await b.get(f"{FHIR}/Observation?patient=pat-017", headers=auth)).json().get("total", 0) == 0


async def test_smart_ehr_launch_related_person_only_for_the_patient_they_are_related_to(running):
    # the attack: an EHR launch naming another patient for a RelatedPerson user
    token = await ehr_token(running)
    app = await smart_app(running, scope="openid fhirUser launch patient/*.rs")
    user = await with_access(running, await make_user(running), "RelatedPerson/rp-1")
    theirs = await create_launch(running, token, patient="pat-003", client_id=app[0])
    other = await create_launch(running, token, patient="pat-004", client_id=app[0])
    scope = "openid fhirUser launch patient/*.rs"
    async with browser(running) as b:
        assert (await smart_flow(b, *app, user, scope=scope, launch=other)).params["error"] == "access_denied"
        flow = await smart_flow(b, *app, user, scope=scope, launch=theirs)
        r = await exchange(b, flow)
    assert r.status_code == 200 and r.json()["patient"] == "pat-003"


async def test_smart_2_2_ehr_launch_patient_user_gets_her_admin_linked_patient_but_not_an_unlinked_one(running):
    # the attack: an EHR launch naming a patient neither hers nor linked to her by an administrator
    token = await ehr_token(running)
    scope = "openid fhirUser launch patient/*.rs"
    app = await smart_app(running, scope=scope)
    user = await patient_user(running, "pat-019", patients=("pat-020",))
    linked = await create_launch(running, token, patient="pat-020", client_id=app[0])
    other = await create_launch(running, token, patient="pat-021", client_id=app[0])
    async with browser(running) as b:
        assert (await smart_flow(b, *app, user, scope=scope, launch=other)).params["error"] == "access_denied"
        flow = await smart_flow(b, *app, user, scope=scope, launch=linked)
        r = await exchange(b, flow)
        assert r.status_code == 200 and r.json()["patient"] == "pat-020"
        auth = bearer(r.json()["access_token"])
        assert (await b.get(f"{FHIR}/Patient/pat-020", headers=auth)).status_code == 200
        assert (await b.get(f"{FHIR}/Patient/pat-021", headers=auth)).status_code == 403
