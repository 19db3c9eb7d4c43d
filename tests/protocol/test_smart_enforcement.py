"""SMART enforcement end to end: tokens from the real flows (EHR launch of pat-001, a practitioner's user/
login, Backend Services) against the FHIR API of the same app, level x interaction x in/out of the
patient compartment, on SQLite and PostgreSQL. Each row is named after the rule it checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import basic
from tests.protocol._oidc_flow import browser
from tests.protocol._smart import (
    FHIR,
    bearer,
    create_launch,
    ehr_token,
    load_data,
    practitioner,
    smart_app,
    smart_tokens,
)


async def _launched(running, scope: str) -> str:
    """A patient/ token from an EHR launch of Patient pat-001."""
    app = await smart_app(running, scope=scope)
    launch = await create_launch(running, await ehr_token(running), patient="pat-001", client_id=app[0])
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, await practitioner(running), app=app,
                                             scope=f"openid launch {scope}", launch=launch)
    assert body["patient"] == claims["patient"] == "pat-001" and scope in body["scope"].split()
    return str(body["access_token"])


async def _user(running, scope: str) -> str:
    app = await smart_app(running, scope=scope)
    async with browser(running) as b:
        _, body, claims = await smart_tokens(running, b, await practitioner(running), app=app,
                                             scope=f"openid fhirUser {scope}")
    assert "patient" not in body and "patient" not in claims
    return str(body["access_token"])


async def _system(running, scope: str) -> str:
    cid, secret = await running.add_client(scope=scope, client_name="Backend", system_scopes_with_secret=True)
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                                headers=basic(cid, secret))
    assert r.status_code == 200 and r.json()["expires_in"] <= 300, r.text
    return str(r.json()["access_token"])


@pytest.fixture(scope="module")
async def tokens(running) -> dict[str, str]:
    await load_data(running)
    return {
        "patient": await _launched(running, "patient/*.cruds"),
        "patient-rs": await _launched(running, "patient/*.rs"),
        "user": await _user(running, "user/*.cruds"),
        "user-rs": await _user(running, "user/*.rs"),
        "system": await _system(running, "system/*.cruds"),
        "system-rs": await _system(running, "system/*.rs"),
        "anonymous": "",
    }


@dataclass(frozen=True)
class Row:
    rule: str
    token: str
    interaction: str  # read, search, create, update
    target: str  # read/update: Type/id; search: Type?query; create: Type:patient
    status: int
    only_patient: str | None = None  # search: every result in this patient's compartment
    at_least: int = 0  # search: at least this many results


IN, OUT = "obs-001-1-v1", "obs-002-1-v1"
ROWS = [
    # patient/ level: the launch patient's compartment only
    Row("patient_read_own_patient", "patient", "read", "Patient/pat-001", 200),
    Row("patient_read_other_patient_refused", "patient", "read", "Patient/pat-002", 403),
    Row("patient_read_own_observation", "patient", "read", f"Observation/{IN}", 200),
    Row("patient_read_other_patients_observation_refused", "patient", "read", f"Observation/{OUT}", 403),
    Row("patient_read_type_outside_compartment_refused", "patient", "read", "Practitioner/prac-01", 403),
    Row("patient_read_unknown_is_404", "patient", "read", "Observation/no-such-obs", 404),
    Row("patient_search_limited_to_compartment", "patient", "search", "Observation?", 200, "pat-001", 1),
    Row("patient_search_for_other_patient_finds_nothing", "patient", "search",
        "Observation?subject=Patient/pat-002", 200, "pat-001", 0),
    Row("patient_search_patients_finds_only_own", "patient", "search", "Patient?", 200, "pat-001", 1),
    Row("patient_search_type_outside_compartment_refused", "patient", "search", "Practitioner?", 403),
    Row("patient_create_in_compartment", "patient", "create", "Observation:pat-001", 201),
    Row("patient_create_outside_compartment_refused", "patient", "create", "Observation:pat-002", 403),
    Row("patient_update_in_compartment", "patient", "update", "Observation/obs-001-1-v2", 200),
    Row("patient_update_outside_compartment_refused", "patient", "update", "Observation/obs-002-1-v2", 403),
    Row("patient_update_moving_resource_out_refused", "patient", "update", "Observation/obs-001-1-v3>pat-002", 403),
    Row("patient_rs_read_own", "patient-rs", "read", f"Observation/{IN}", 200),
    Row("patient_rs_create_refused", "patient-rs", "create", "Observation:pat-001", 403),
    Row("patient_rs_update_refused", "patient-rs", "update", "Observation/obs-001-1-v4", 403),
    # user/ level: whatever the user may see (no per-user rules configured: all of it)
    Row("user_read_any_patient", "user", "read", "Patient/pat-002", 200),
    Row("user_read_practitioner", "user", "read", "Practitioner/prac-01", 200),
    Row("user_read_unknown_is_404", "user", "read", "Patient/pat-999", 404),
    Row("user_search_spans_patients", "user", "search", "Observation?_count=1000", 200, None, 100),
    Row("user_create_any_patient", "user", "create", "Observation:pat-002", 201),
    Row("user_update_any_patient", "user", "update", "Observation/obs-002-1-v3", 200),
    Row("user_rs_read", "user-rs", "read", f"Observation/{OUT}", 200),
    Row("user_rs_create_refused", "user-rs", "create", "Observation:pat-002", 403),
    Row("user_rs_update_refused", "user-rs", "update", "Observation/obs-002-1-v4", 403),
    # system/ level (Backend Services)
    Row("system_read_any", "system", "read", "Patient/pat-030", 200),
    Row("system_read_unknown_is_404", "system", "read", "Condition/no-such", 404),
    Row("system_search_all_patients", "system", "search", "Patient?", 200, None, 30),
    Row("system_create", "system", "create", "Observation:pat-003", 201),
    Row("system_update", "system", "update", "Observation/obs-003-1-v1", 200),
    Row("system_rs_search", "system-rs", "search", "Condition?", 200, None, 1),
    Row("system_rs_create_refused", "system-rs", "create", "Observation:pat-003", 403),
    Row("system_rs_update_refused", "system-rs", "update", "Observation/obs-003-1-v2", 403),
    # no token at all
    Row("no_token_read_is_401", "anonymous", "read", "Patient/pat-001", 401),
    Row("no_token_search_is_401", "anonymous", "search", "Observation?", 401),
]


def _observation(patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
            "effectiveDateTime": "2030-01-01", "valueQuantity": {"value": 70, "unit": "/min"}}


@pytest.mark.parametrize("row", ROWS, ids=[r.rule for r in ROWS])
async def test_smart_enforcement(running, tokens, row: Row) -> None:
    http, token = running.http, tokens[row.token]
    headers = bearer(token) if token else {}
    if row.interaction == "read":
        r = await http.get(f"{FHIR}/{row.target}", headers=headers)
    elif row.interaction == "search":
        r = await http.get(f"{FHIR}/{row.target}", headers=headers)
    elif row.interaction == "create":
        resource_type, patient = row.target.split(":")
        r = await http.post(f"{FHIR}/{resource_type}", json=_observation(patient), headers=headers)
    else:
        path, _, move_to = row.target.partition(">")
        current = (await http.get(f"{FHIR}/{path}", headers=bearer(tokens["system"]))).json()
        changed = {k: v for k, v in current.items() if k != "meta"}
        changed["status"] = "amended"
        if move_to:
            changed["subject"] = {"reference": f"Patient/{move_to}"}
        r = await http.put(f"{FHIR}/{path}", json=changed, headers=headers)
    assert r.status_code == row.status, f"{row.rule}: {r.status_code} {r.text[:500]}"
    body = r.json()
    if row.status >= 400:
        assert body["resourceType"] == "OperationOutcome"
        if row.status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
        return
    if row.interaction == "search":
        assert body["resourceType"] == "Bundle" and body["total"] >= row.at_least
        if row.at_least == 0 and row.only_patient:
            assert body["total"] == 0
        for entry in body.get("entry", []):
            resource = entry["resource"]
            if row.only_patient:
                ref = resource["id"] if resource["resourceType"] == "Patient" else resource["subject"]["reference"]
                assert ref in (row.only_patient, f"Patient/{row.only_patient}"), (row.rule, resource["id"])
    elif row.interaction == "create":
        assert body["id"] and r.headers["location"].startswith(f"{FHIR}/Observation/{body['id']}")
    elif row.interaction == "update":
        assert body["status"] == "amended" and body["meta"]["versionId"] == "2"
    else:
        assert f"{body['resourceType']}/{body['id']}" == row.target
