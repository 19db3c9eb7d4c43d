"""The FHIR API in-process, on SQLite and PostgreSQL: interactions, search parameters, paging,
validation, the CapabilityStatement and an OperationOutcome on every error path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from ostiary.fhir.access import TokenContext
from ostiary.fhir.app import make_fhir_app
from ostiary.fhir.sample import sample_resources
from ostiary.fhir.store import FhirStore, get_resource, search_patients
from ostiary.smart.entitlements import Entitlement
from ostiary.store.sql.engine import make_engine, upgrade

BASE = "http://fhir.test/fhir"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
EVERYONE = Entitlement(everyone=True)
TOKENS = {
    "sys-read": TokenContext("system/*.rs", client_id="backend"),
    "sys-write": TokenContext("system/*.cruds", client_id="backend"),
    "pat-1": TokenContext("launch/patient patient/*.rs", patient="pat-001"),
    "pat-1-write": TokenContext("patient/*.cruds", patient="pat-001"),
    "pat-noctx": TokenContext("patient/*.rs"),
    "user": TokenContext("openid fhirUser user/*.rs", fhir_user="Practitioner/prac-01", entitlement=EVERYONE),
    "user-obs": TokenContext("user/Observation.rs", entitlement=EVERYONE),
    "user-pat-1": TokenContext("user/*.cruds", fhir_user="Patient/pat-001",
                               entitlement=Entitlement(patients=frozenset({"pat-001"}))),
    "user-unknown": TokenContext("user/*.rs", fhir_user="Practitioner/prac-01"),  # no entitlement: nothing
    "labs": TokenContext(f"patient/Observation.rs?category={LAB}", patient="pat-001"),
    "v1": TokenContext("patient/Observation.read", patient="pat-001"),
    "none": TokenContext("openid profile"),
}
SAMPLE = sample_resources()


async def authorize(token: str) -> TokenContext | None:
    return TOKENS.get(token)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def fhir(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    from ostiary.fhir.sample import load_sample

    engine = make_engine(database_url)
    await upgrade(engine)
    store = FhirStore(engine)
    assert await load_sample(store) == len(SAMPLE)
    assert await load_sample(store) == 0  # idempotent
    app = Starlette(routes=[Mount("/fhir", make_fhir_app(store, authorize, BASE))])  # as the lead mounts it
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        http.store = store  # type: ignore[attr-defined]
        yield http
    await engine.dispose()


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
    return body


def expected(resource_type: str, **where: Any) -> set[str]:
    out = set()
    for r in SAMPLE:
        if r["resourceType"] != resource_type:
            continue
        ref = r.get("subject", r.get("patient", {})).get("reference")
        if "patient" in where and ref != f"Patient/{where['patient']}":
            continue
        out.add(r["id"])
    return out


async def ids(http: httpx.AsyncClient, url: str, token: str = "sys-read") -> set[str]:
    response = await http.get(url + ("&" if "?" in url else "?") + "_count=200", headers=auth(token))
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset" and bundle["total"] == len(bundle.get("entry", []))
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


# --- enforcement, table-driven: level x interaction x in / out of the compartment -----------------------

OBS_1, OBS_2 = "obs-001-1-v1", "obs-002-1-v1"
READS = [
    ("sys-read", "Patient/pat-002", 200), ("sys-read", f"Observation/{OBS_2}", 200), ("sys-read", "Patient/nope", 404),
    ("pat-1", "Patient/pat-001", 200), ("pat-1", "Patient/pat-002", 403), ("pat-1", f"Observation/{OBS_1}", 200),
    ("pat-1", f"Observation/{OBS_2}", 403), ("pat-1", "Practitioner/prac-01", 403), ("pat-1", "Observation/nope", 404),
    ("pat-1", "Condition/cond-001-1", 200), ("pat-1", "Condition/cond-002-1", 403),
    ("pat-1", "MedicationRequest/medrx-001-1", 200), ("pat-1", "Encounter/enc-002-1", 403),
    ("pat-noctx", "Patient/pat-001", 403), ("user", "Practitioner/prac-01", 200), ("user", f"Observation/{OBS_2}", 200),
    ("user-obs", "Patient/pat-001", 403), ("user-obs", f"Observation/{OBS_2}", 200), ("none", "Patient/pat-001", 403),
    ("labs", "Observation/obs-001-1-l1", 200), ("labs", f"Observation/{OBS_1}", 403),
    ("v1", f"Observation/{OBS_1}", 200),
    ("v1", "Patient/pat-001", 403),
    # issue "Who sees which patient" 2: a patient user with user/*.rs read every patient; now only her own
    ("user-pat-1", "Patient/pat-001", 200), ("user-pat-1", "Patient/pat-002", 403),
    ("user-pat-1", f"Observation/{OBS_1}", 200), ("user-pat-1", f"Observation/{OBS_2}", 403),
    ("user-pat-1", "Practitioner/prac-01", 200), ("user-unknown", "Practitioner/prac-01", 403),
]


@pytest.mark.parametrize(("token", "path", "status"), READS)
async def test_read_enforcement(fhir: httpx.AsyncClient, token: str, path: str, status: int) -> None:
    response = await fhir.get(path, headers=auth(token))
    if status == 200:
        assert response.status_code == 200, response.text
        body = response.json()
        assert f"{body['resourceType']}/{body['id']}" == path
        assert body["meta"]["versionId"] and body["meta"]["lastUpdated"]
        assert response.headers["etag"] == f'W/"{body["meta"]["versionId"]}"'
    else:
        outcome(response, status)


def observation(patient: str, code: str = "8867-4", category: str = "vital-signs") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{patient}"},
            "category": [{"coding": [{"system": LAB.split("|")[0], "code": category}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "effectiveDateTime": "2030-01-01",
            "valueQuantity": {"value": 70, "unit": "/min"}}


CREATES = [
    ("sys-write", "pat-003", 201), ("sys-read", "pat-003", 403), ("pat-1-write", "pat-001", 201),
    ("pat-1-write", "pat-002", 403), ("pat-1", "pat-001", 403), ("user-obs", "pat-001", 403), ("none", "pat-001", 403),
    ("user-pat-1", "pat-001", 201), ("user-pat-1", "pat-002", 403),
]


@pytest.mark.parametrize(("token", "patient", "status"), CREATES)
async def test_create_enforcement(fhir: httpx.AsyncClient, token: str, patient: str, status: int) -> None:
    response = await fhir.post("Observation", json=observation(patient), headers=auth(token))
    if status != 201:
        outcome(response, status)
        return
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["meta"]["versionId"] == "1" and created["id"]
    assert response.headers["location"] == f"{BASE}/Observation/{created['id']}/_history/1"
    again = await fhir.get(f"Observation/{created['id']}", headers=auth("sys-read"))
    assert again.json() == created


async def _created(fhir: httpx.AsyncClient, patient: str) -> dict[str, Any]:
    response = await fhir.post("Observation", json=observation(patient), headers=auth("sys-write"))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# (token, stored under, moved to, status): an update is checked against the stored and the new resource
UPDATES = [
    ("sys-write", "pat-003", "pat-004", 200), ("pat-1-write", "pat-001", "pat-001", 200),
    ("pat-1-write", "pat-001", "pat-006", 403), ("pat-1-write", "pat-006", "pat-001", 403),
    ("pat-1-write", "pat-006", "pat-006", 403), ("pat-1", "pat-001", "pat-001", 403),
    ("sys-read", "pat-003", "pat-003", 403),
]


@pytest.mark.parametrize(("token", "stored", "moved", "status"), UPDATES)
async def test_update_enforcement(fhir: httpx.AsyncClient, token: str, stored: str, moved: str, status: int) -> None:
    current = await _created(fhir, stored)
    new = {**current, "subject": {"reference": f"Patient/{moved}"}, "status": "amended"}
    response = await fhir.put(f"Observation/{current['id']}", json=new, headers=auth(token))
    if status != 200:
        outcome(response, status)
        return
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["versionId"] == "2"
    assert response.json()["status"] == "amended"


SEARCHES = [
    ("sys-read", "Observation?patient=pat-002", 200), ("pat-1", "Observation", 200), ("pat-1", "Patient", 200),
    ("pat-1", "Practitioner", 403), ("pat-noctx", "Observation", 403), ("user", "Practitioner", 200),
    ("user-obs", "Condition", 403), ("none", "Patient", 403), ("labs", "Observation", 200), ("labs", "Condition", 403),
    ("user-pat-1", "Patient", 200), ("user-pat-1", "Observation", 200), ("user-unknown", "Patient", 403),
]


@pytest.mark.parametrize(("token", "url", "status"), SEARCHES)
async def test_search_enforcement(fhir: httpx.AsyncClient, token: str, url: str, status: int) -> None:
    response = await fhir.get(url, headers=auth(token))
    if status != 200:
        outcome(response, status)
        return
    assert response.status_code == 200, response.text
    for entry in response.json().get("entry", []):
        resource = entry["resource"]
        if token.startswith("pat") or token in ("labs", "user-pat-1"):
            ref = resource["id"] if resource["resourceType"] == "Patient" else resource["subject"]["reference"]
            assert ref in ("pat-001", "Patient/pat-001")


async def test_patient_search_is_confined_to_the_compartment(fhir: httpx.AsyncClient) -> None:
    assert await ids(fhir, "Patient", "pat-1") == {"pat-001"}
    sample = expected("Observation", patient="pat-001")
    found = await ids(fhir, "Observation", "pat-1")
    assert sample <= found  # plus any created for pat-001 by other tests
    assert await ids(fhir, "Observation?patient=pat-002", "pat-1") == set()


async def test_v2_restriction_is_added_to_searches(fhir: httpx.AsyncClient) -> None:
    found = await ids(fhir, "Observation", "labs")
    labs = {r["id"] for r in SAMPLE if r["resourceType"] == "Observation"
            and r["subject"]["reference"] == "Patient/pat-001"
            and r["category"][0]["coding"][0]["code"] == "laboratory"}
    assert found == labs and labs
    assert await ids(fhir, "Observation?category=vital-signs", "labs") == set()


async def test_unauthenticated_gets_401_with_a_bearer_challenge(fhir: httpx.AsyncClient) -> None:
    response = await fhir.get("Patient/pat-001")
    outcome(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer realm=")
    response = await fhir.get("Patient/pat-001", headers=auth("unknown"))
    outcome(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    outcome(await fhir.get("Patient", headers={"Authorization": "Bearer a b"}), 400)


# --- search parameters and paging ---------------------------------------------------------------------

async def test_search_id_and_patient_forms(fhir: httpx.AsyncClient) -> None:
    assert await ids(fhir, "Patient?_id=pat-001,pat-002") == {"pat-001", "pat-002"}
    want = expected("Observation", patient="pat-002")
    for query in ("patient=pat-002", "patient=Patient/pat-002", "subject=Patient/pat-002", "subject=pat-002"):
        assert await ids(fhir, f"Observation?{query}") == want
    assert await ids(fhir, "AllergyIntolerance?patient=pat-002") == expected("AllergyIntolerance", patient="pat-002")
    assert await ids(fhir, "Condition?patient=pat-002") == expected("Condition", patient="pat-002")


async def test_search_category_and_code(fhir: httpx.AsyncClient) -> None:
    labs = await ids(fhir, "Observation?patient=pat-002&category=laboratory")
    assert labs == await ids(fhir, f"Observation?patient=pat-002&category={LAB}")
    assert labs and all(i.split("-")[-1].startswith("l") for i in labs)
    heart = {r["id"] for r in SAMPLE
             if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "8867-4"}
    assert await ids(fhir, "Observation?code=http://loinc.org|8867-4&date=lt2029") == heart
    assert await ids(fhir, "Observation?code=8867-4&date=lt2029") == heart
    assert await ids(fhir, "Observation?code=http://snomed.info/sct|8867-4") == set()
    rx = {r["id"] for r in SAMPLE if r["resourceType"] == "MedicationRequest"
          and r["medicationCodeableConcept"]["coding"][0]["code"] == "314076"}
    assert await ids(fhir, "MedicationRequest?code=314076") == rx


async def test_search_dates(fhir: httpx.AsyncClient) -> None:
    obs = [r for r in SAMPLE if r["resourceType"] == "Observation" and r["subject"]["reference"] == "Patient/pat-002"]
    cut = sorted(r["effectiveDateTime"] for r in obs)[len(obs) // 2][:10]
    later = {r["id"] for r in obs if r["effectiveDateTime"][:10] >= cut}
    assert await ids(fhir, f"Observation?patient=pat-002&date=ge{cut}") == later
    assert await ids(fhir, f"Observation?patient=pat-002&date=lt{cut}") == {r["id"] for r in obs} - later
    assert await ids(fhir, f"Observation?patient=pat-002&date={cut}") == {r["id"] for r in obs
                                                                          if r["effectiveDateTime"][:10] == cut}
    enc = await ids(fhir, "Encounter?patient=pat-002&date=ge2000-01&date=le2100")
    assert enc == expected("Encounter", patient="pat-002")
    assert await ids(fhir, "MedicationRequest?patient=pat-002&date=gt2100") == set()
    born = next(r["birthDate"] for r in SAMPLE if r["id"] == "pat-002")
    assert "pat-002" in await ids(fhir, f"Patient?birthdate={born}")


async def test_search_name_contains_case_insensitive(fhir: httpx.AsyncClient) -> None:
    patient = next(r for r in SAMPLE if r["id"] == "pat-001")
    family = patient["name"][0]["family"]
    want = {r["id"] for r in SAMPLE
            if r["resourceType"] == "Patient" and family.lower()[1:4] in r["name"][0]["family"].lower()}
    assert await ids(fhir, f"Patient?name={family.upper()[1:4]}") == want
    assert await ids(fhir, "Practitioner?name=dr.") == {f"prac-0{i}" for i in range(1, 6)}


async def test_paging_with_next_links(fhir: httpx.AsyncClient) -> None:
    want = expected("Observation", patient="pat-002")
    url: str | None = f"{BASE}/Observation?patient=pat-002&_count=4"
    seen: list[str] = []
    while url:
        bundle = (await fhir.get(url, headers=auth("sys-read"))).json()
        assert bundle["total"] == len(want) and len(bundle.get("entry", [])) <= 4
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].startswith(f"{BASE}/Observation?")
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = links.get("next")
    assert len(seen) == len(set(seen)) and set(seen) == want
    empty = (await fhir.get("Observation?patient=pat-002&_count=0", headers=auth("sys-read"))).json()
    assert (empty["total"] == len(want) and "entry" not in empty) or empty["entry"] == []


async def test_post_search(fhir: httpx.AsyncClient) -> None:
    response = await fhir.post("Observation/_search", data={"patient": "pat-002", "category": "laboratory"},
                               headers=auth("sys-read"))
    assert response.status_code == 200
    assert {e["resource"]["id"] for e in response.json()["entry"]} == await ids(
        fhir, "Observation?patient=pat-002&category=laboratory")


@pytest.mark.parametrize("query", ["foo=1", "name:exact=x", "date=soon", "_count=-1", "_count=abc", "code=",
                                   "_include=Observation:patient", "date=2024-13-01"])
async def test_bad_search_is_400(fhir: httpx.AsyncClient, query: str) -> None:
    outcome(await fhir.get(f"Observation?{query}", headers=auth("sys-read")), 400)


# --- validation and other errors ---------------------------------------------------------------------

@pytest.mark.parametrize(("body", "needle"), [
    (b"{not json", "not valid JSON"), (b"[]", "JSON object"), (b'{"resourceType": "Patient"}', "resourceType"),
    (b'{"resourceType": "Observation", "code": {"text": "x"}}', "status"),
    (b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "bogus": 1}', "bogus"),
    (b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "effectiveDateTime": "x"}',
     "effectiveDateTime"),
])
async def test_invalid_resources_are_400_with_the_message(fhir: httpx.AsyncClient, body: bytes, needle: str) -> None:
    response = await fhir.post("Observation", content=body, headers={**auth("sys-write"),
                                                                     "Content-Type": "application/fhir+json"})
    assert needle in outcome(response, 400)["issue"][0]["diagnostics"]


async def test_other_error_paths(fhir: httpx.AsyncClient) -> None:
    w = auth("sys-write")
    outcome(await fhir.post("Observation", json=observation("nobody"), headers=w), 422)
    outcome(await fhir.post("Observation", content=b"x", headers={**w, "Content-Type": "text/plain"}), 415)
    outcome(await fhir.delete("Observation/obs-001-1-v1", headers=w), 405)
    outcome(await fhir.patch("Observation/obs-001-1-v1", headers=w), 405)
    outcome(await fhir.put("Observation", headers=w), 405)
    outcome(await fhir.get("Observation/_search", headers=w), 405)
    outcome(await fhir.post("metadata"), 405)
    outcome(await fhir.get("Medication/1", headers=w), 404)
    outcome(await fhir.get("", headers=w), 404)
    outcome(await fhir.get("Observation/a/_history/1", headers=w), 404)
    outcome(await fhir.get("Observation/" + "x" * 65, headers=w), 404)
    current = await _created(fhir, "pat-005")
    outcome(await fhir.put(f"Observation/{current['id']}", json={**current, "id": "other"}, headers=w), 400)
    outcome(await fhir.put("Observation/missing", json={**current, "id": "missing"}, headers=w), 404)
    outcome(await fhir.put(f"Observation/{current['id']}", json=current, headers={**w, "If-Match": 'W/"9"'}), 412)
    ok = await fhir.put(f"Observation/{current['id']}", json=current, headers={**w, "If-Match": 'W/"1"'})
    assert ok.status_code == 200
    outcome(await fhir.post("Observation", content=b"{" * 2_000_000, headers=w), 413)


async def test_capability_statement(fhir: httpx.AsyncClient) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    response = await fhir.get("metadata")
    assert response.status_code == 200
    body = response.json()
    CapabilityStatement.model_validate(body)
    rest = body["rest"][0]
    oauth = rest["security"]["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    uris = {e["url"]: e["valueUri"] for e in oauth["extension"]}
    assert uris == {"token": "http://fhir.test/token", "authorize": "http://fhir.test/authorize"}
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    types = {r["type"]: r for r in rest["resource"]}
    assert set(types) >= {"Patient", "Practitioner", "Encounter", "Observation", "Condition", "MedicationRequest",
                          "AllergyIntolerance"}
    assert {i["code"] for i in types["Observation"]["interaction"]} == {"read", "search-type", "create", "update"}
    assert {"patient", "code", "date", "category"} <= {p["name"] for p in types["Observation"]["searchParam"]}


async def test_picker_helpers(fhir: httpx.AsyncClient) -> None:
    store = fhir.store  # type: ignore[attr-defined]
    everyone = await search_patients(store, None, 100)
    assert len(everyone) == 30
    assert len(await search_patients(store, "", 5)) == 5
    family = everyone[0]["name"][0]["family"]
    found = await search_patients(store, family.lower(), 50)
    assert found and all(family.lower() in p["name"][0]["family"].lower() for p in found)
    assert (await get_resource(store, "Practitioner", "prac-01"))["id"] == "prac-01"  # type: ignore[index]
    assert await get_resource(store, "Patient", "nope") is None
