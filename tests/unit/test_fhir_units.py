"""FHIR search matching, sample data, and the table in the shared metadata."""

from __future__ import annotations

import pytest

from ostiary.fhir.errors import FhirError
from ostiary.fhir.sample import sample_resources
from ostiary.fhir.search import matches, parse_search
from ostiary.fhir.store import compartment_of
from ostiary.fhir.validation import validate_resource

OBS = {"resourceType": "Observation", "id": "o1", "status": "final", "effectiveDateTime": "2024-03-15T10:30:00Z",
       "subject": {"reference": "Patient/p1"},
       "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}


@pytest.mark.parametrize(("value", "hit"), [
    ("2024", True), ("2024-03", True), ("2024-03-15", True), ("2024-03-16", False), ("eq2024-03-15", True),
    ("ne2024-03-15", False), ("ge2024-03-15", True), ("gt2024-03-15", False), ("gt2024-03-14", True),
    ("le2024-03-15", True), ("lt2024-03-15", False), ("lt2024-03-16", True), ("ge2024-03-15T10:30:00Z", True),
    ("gt2024-03-15T10:30:00Z", False), ("lt2024-03-15T10:30:00+00:00", False), ("le2024-03-15T11:30:00+01:00", True),
    ("2023,2024", True),
])
def test_date_prefixes(value: str, hit: bool) -> None:
    assert matches(OBS, parse_search("Observation", [("date", value)]).params) is hit


@pytest.mark.parametrize(("param", "value", "hit"), [
    ("code", "8867-4", True), ("code", "http://loinc.org|8867-4", True), ("code", "|8867-4", False),
    ("code", "http://loinc.org|", True), ("code", "x,8867-4", True), ("patient", "p1", True),
    ("patient", "Patient/p1", True), ("subject", "Patient/p2", False), ("_id", "o1", True), ("status", "final", True),
])
def test_token_and_reference(param: str, value: str, hit: bool) -> None:
    assert matches(OBS, parse_search("Observation", [(param, value)]).params) is hit


def test_repeated_parameters_are_anded() -> None:
    assert not matches(OBS, parse_search("Observation", [("date", "ge2024"), ("date", "lt2024-03-01")]).params)


@pytest.mark.parametrize("items", [[("date", "2024-99")], [("bogus", "1")], [("_count", "x")], [("code", "")]])
def test_bad_parameters(items: list[tuple[str, str]]) -> None:
    with pytest.raises(FhirError) as caught:
        parse_search("Observation", items)
    assert caught.value.status == 400


def test_sample_is_deterministic_valid_and_linked() -> None:
    first = sample_resources()
    assert first == sample_resources() and first != sample_resources(seed=8)
    by_key = {f"{r['resourceType']}/{r['id']}" for r in first}
    assert sum(r["resourceType"] == "Patient" for r in first) == 30
    assert sum(r["resourceType"] == "Practitioner" for r in first) == 5
    for resource in first:
        validate_resource(resource)
        for key in ("subject", "patient", "requester", "encounter"):
            if key in resource:
                assert resource[key]["reference"] in by_key
        if resource["resourceType"] != "Practitioner":
            assert compartment_of(resource) is not None
    systems = {c["system"] for r in first for c in r.get("code", {}).get("coding", [])}
    assert {"http://loinc.org", "http://snomed.info/sct"} <= systems


def test_fhir_table_is_in_the_shared_metadata() -> None:
    import ostiary.fhir.schema  # noqa: F401
    from ostiary.store.sql.schema import metadata

    assert "fhir_resources" in metadata.tables


def test_context_from_claims() -> None:
    from ostiary.fhir.access import TokenContext, context_from_claims

    claims = {"scope": "patient/*.rs openid", "patient": "p1", "fhirUser": "Practitioner/x", "client_id": "c"}
    assert context_from_claims(claims) == TokenContext("patient/*.rs openid", "p1", "Practitioner/x", "c")
    assert context_from_claims({"scope": ["a", 1], "patient": 5}) == TokenContext("a")
