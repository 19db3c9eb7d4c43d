"""EHR launches (issue 8, item 4): POST /smart/launch names the app and is checked against the FHIR data, a
launch value is single-use (spent when the code is issued, not at /authorize), bound to its app and user,
and the launcher is only for users with the launch role, listing only their patients."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.protocol._oidc_flow import REDIRECT, browser, csrf_of, query_of, sign_in_locally
from tests.protocol._smart import (
    FHIR,
    bearer,
    create_launch,
    ehr_token,
    load_data,
    patient_name,
    practitioner,
    restricted_practitioner,
    smart_app,
    smart_flow,
)


@pytest.fixture(scope="module", autouse=True)
async def sample(running):
    await load_data(running)


EHR_SCOPE = "openid fhirUser launch patient/*.rs"


async def _post_launch(running, token: str, **body):
    return await running.http.post("/smart/launch", json=body, headers=bearer(token))


# --- POST /smart/launch -----------------------------------------------------------------------------------

async def test_smart_launch_api_requires_a_registered_client_id(running):
    # the attack: a launch value without an app, usable by any app
    token = await ehr_token(running)
    for body in ({"patient": "pat-001"}, {"patient": "pat-001", "client_id": "no-such-app"}):
        r = await _post_launch(running, token, **body)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    app = await smart_app(running)
    assert (await _post_launch(running, token, patient="pat-001", client_id=app[0])).status_code == 201


async def test_smart_launch_api_token_aud_must_be_the_issuer_or_the_launch_endpoint(running):
    # a token minted for another resource server cannot create launches
    cid, secret = await running.add_client(scope="ehr:launch", client_name="EHR", audiences=["https://api.example"])
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": "ehr:launch"},
                                auth=(cid, secret))
    assert r.status_code == 200 and r.json()["access_token"]
    app = await smart_app(running)
    r = await _post_launch(running, r.json()["access_token"], patient="pat-001", client_id=app[0])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


@pytest.mark.parametrize(("case", "extra", "accepted"), [
    ("encounter of the patient", {"encounter": "enc-001-1"}, True),
    ("encounter of another patient", {"encounter": "enc-002-1"}, False),
    ("unknown encounter", {"encounter": "enc-nope"}, False),
    ("reference that resolves", {"fhirContext": [{"reference": "Practitioner/prac-02"}]}, True),
    ("reference that does not resolve", {"fhirContext": [{"reference": "Practitioner/nobody"}]}, False),
    ("absolute reference", {"fhirContext": [{"reference": "https://evil.example/fhir/Patient/1"}]}, False),
    ("canonical", {"fhirContext": [{"canonical": "http://example.org/Questionnaire/phq9|1.0"}]}, True),
    ("canonical not a URL", {"fhirContext": [{"canonical": "phq9"}]}, False),
    ("identifier", {"fhirContext": [{"identifier": {"system": "urn:oid:1.2.3", "value": "A1"}}]}, True),
    ("identifier without value", {"fhirContext": [{"identifier": {"system": "urn:oid:1.2.3"}}]}, False),
    ("two kinds in one entry", {"fhirContext": [{"reference": "Patient/pat-001", "canonical": "http://x.org/a"}]},
     False),
])
async def test_smart_2_2_launch_context_must_match_the_fhir_data(running, case, extra, accepted):
    token = await ehr_token(running)
    app = await smart_app(running)
    r = await _post_launch(running, token, patient="pat-001", client_id=app[0], **extra)
    assert (r.status_code == 201) is accepted, (case, r.text)
    if not accepted:
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"


# --- the launch value: single use, spent at the code, bound to app and user ---------------------------------

async def test_smart_launch_value_survives_a_reload_and_is_spent_when_the_code_is_issued(running):
    # the attack: an EHR launch value used twice, by two different apps (or twice by one)
    token = await ehr_token(running)
    app = await smart_app(running, scope="patient/*.rs launch")
    launch = await create_launch(running, token, patient="pat-001", client_id=app[0])
    user = await practitioner(running)
    async with browser(running) as b:
        for _ in range(2):  # a reload at /authorize does not burn it
            r = await b.get("/authorize", params=_params(app[0], launch))
            assert r.status_code == 303 and r.headers["location"].startswith("/interaction/")
        flow = await smart_flow(b, *app, user, scope=EHR_SCOPE, launch=launch)
        assert "code" in flow.params
        again = await smart_flow(b, *app, user, scope=EHR_SCOPE, launch=launch)
    assert again.params["error"] == "invalid_request"


async def test_smart_launch_named_user_binds_the_launch_to_that_user(running):
    token = await ehr_token(running)
    app = await smart_app(running, scope="patient/*.rs launch")
    named, other = await practitioner(running), await practitioner(running)
    launch = await create_launch(running, token, patient="pat-001", client_id=app[0], user=named.username)
    async with browser(running) as b:
        refused = await smart_flow(b, *app, other, scope=EHR_SCOPE, launch=launch)
    assert refused.params["error"] == "access_denied"
    by_fhir_user = await create_launch(running, token, patient="pat-001", client_id=app[0],
                                       user=f"{FHIR}/Practitioner/prac-01")
    async with browser(running) as b:
        assert "code" in (await smart_flow(b, *app, named, scope=EHR_SCOPE, launch=launch)).params
    async with browser(running) as b:
        assert "code" in (await smart_flow(b, *app, other, scope=EHR_SCOPE, launch=by_fhir_user)).params


async def test_smart_launch_patient_outside_the_users_entitlement_is_access_denied(running):
    token = await ehr_token(running)
    app = await smart_app(running, scope="patient/*.rs launch")
    user = await restricted_practitioner(running, ("pat-002",))
    refused = await create_launch(running, token, patient="pat-001", client_id=app[0])
    allowed = await create_launch(running, token, patient="pat-002", client_id=app[0])
    async with browser(running) as b:
        assert (await smart_flow(b, *app, user, scope=EHR_SCOPE, launch=refused)).params["error"] == "access_denied"
        assert "code" in (await smart_flow(b, *app, user, scope=EHR_SCOPE, launch=allowed)).params


async def test_smart_launch_value_50_parallel_uses_give_one_code(running):
    # DESIGN concurrency contract: validate first, then one conditional statement; losers get a 4xx
    token = await ehr_token(running)
    app = await smart_app(running, scope="patient/*.rs launch")
    user = await practitioner(running)
    first = await create_launch(running, token, patient="pat-001", client_id=app[0])
    raced = await create_launch(running, token, patient="pat-001", client_id=app[0])
    async with browser(running) as b:
        assert "code" in (await smart_flow(b, *app, user, scope=EHR_SCOPE, launch=first)).params  # login, consent
        answers = await asyncio.gather(*(b.get("/authorize", params=_params(app[0], raced)) for _ in range(50)))
    assert all(r.status_code == 303 for r in answers)
    outcomes = [query_of(r.headers["location"]) for r in answers]
    assert sum("code" in o for o in outcomes) == 1
    assert all(o.get("error") == "invalid_request" for o in outcomes if "code" not in o)


def _params(client_id: str, launch: str) -> dict[str, str]:
    return {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "state": "s1",
            "scope": EHR_SCOPE, "launch": launch, "aud": FHIR,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}


# --- the EHR launcher ---------------------------------------------------------------------------------------

async def _launcher_session(running, b, user) -> str:
    """Signed in through the local sign-in the launcher sends to (issue 11: no password-only side door)."""
    r = await b.get("/smart/launcher")
    assert r.status_code == 303 and r.headers["location"] == "/signin?return_to=%2Fsmart%2Flauncher"
    _, r = await sign_in_locally(b, user.username, "/smart/launcher")
    assert r.headers["location"] == "/smart/launcher"
    return (await b.get("/smart/launcher")).text


async def test_smart_launcher_refuses_users_without_the_launch_role(running):
    # the attack: any signed-in user opened the launcher, saw every patient and launched apps on them
    user = await practitioner(running)  # may see everyone, but is not an EHR user
    async with browser(running) as b:
        page = await _launcher_session(running, b, user)
        assert "launch role" in page and patient_name("pat-001") not in page
        r = await b.post("/smart/launcher", data={"csrf_token": "x", "patient": "pat-001", "client_id": "x"})
        assert r.status_code == 403


async def test_smart_launcher_lists_only_the_users_patients_and_launches_only_them(running):
    await smart_app(running, initiate_login_uri="https://app.example/launch")
    user = await restricted_practitioner(running, ("pat-003", "pat-004"), roles=frozenset({"launch"}))
    async with browser(running) as b:
        page = await _launcher_session(running, b, user)
        listed = set(re.findall(r'<option value="(pat-[0-9]+)"', page))
        assert listed == {"pat-003", "pat-004"}
        form = {"csrf_token": csrf_of(page), "patient": "pat-001", "client_id": re.findall(
            r'name="client_id">\s*<option value="([^"]+)"', page)[0]}
        assert (await b.post("/smart/launcher", data=form)).status_code == 400
        r = await b.post("/smart/launcher", data={**form, "patient": "pat-003"})
    assert r.status_code == 303 and r.headers["location"].startswith("https://app.example/launch?iss=")
