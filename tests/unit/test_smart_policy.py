"""SMART 2.2 enforcement: levels, interactions, the patient compartment and query restrictions."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from ostiary.resource import Guard, InsufficientScope, PermissionPolicy, Principal
from ostiary.smart.permissions import SmartAccess, SmartPermissions, token_scopes
from ostiary.smart.policy import EVERYONE, Decision, check, filed_under, in_patient_compartment, matches_query
from ostiary.smart.scopes import ScopeSet

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "smart_scopes.json").read_text())
PATIENT = "123"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
LAB_CODING = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
VITALS_CODING = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}


def observation(patient: str = PATIENT, category: dict[str, str] = LAB_CODING) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [{"coding": [category]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def allows(scope: str, interaction: str, resource_type: str, **kw: Any) -> Decision:
    kw.setdefault("level_context", PATIENT)
    kw.setdefault("user_access", EVERYONE)
    return check(ScopeSet.parse(scope), interaction=interaction, resource_type=resource_type, **kw)


# ---- spec vectors -------------------------------------------------------------------------------


def _resource_for(resource_type: str) -> dict[str, Any]:
    if resource_type == "Patient":
        return {"resourceType": "Patient", "id": PATIENT}
    return {"resourceType": resource_type, "id": "x1", "subject": {"reference": f"Patient/{PATIENT}"}}


@pytest.mark.parametrize(
    "vector", VECTORS["enforce"], ids=[f"{v['section']}: {v['scope']} {v['interaction']}" for v in VECTORS["enforce"]]
)
def test_smart_2_2_enforcement_example(vector: dict[str, Any]):
    resource = None if vector["interaction"] == "s" else _resource_for(vector["resource_type"])
    decision = allows(vector["scope"], vector["interaction"], vector["resource_type"], resource=resource)
    assert decision.allowed is vector["allowed"], decision.reason


# ---- the table: level x interaction x compartment x resource type x query restriction ------------
# Every row's scope is <level>/<Observation|*|Condition>.crs?category=<lab>: it grants create, read
# and search (not update or delete) on laboratory observations only.


def expected(level: str, interaction: str, compartment: str, rtype: str, query: str) -> tuple[str, bool]:
    """The spec rule deciding a row, and its outcome."""
    if rtype == "other":
        return "resource_scopes_name_the_type", False
    if interaction not in "crs":
        return "interaction_not_in_scope", False
    if interaction == "s":
        return "search_allowed_server_adds_restrictions", True
    if level == "patient" and compartment == "out":
        return "patient_scopes_only_in_patient_compartment", False
    if query == "not":
        return "query_restriction_must_match_resource", False
    return "allowed", True


ROWS = list(
    itertools.product(
        ["patient", "user", "system"], "cruds", ["in", "out"], ["match", "wildcard", "other"], ["matching", "not"]
    )
)


def _row_id(row: tuple[str, ...]) -> str:
    rule, _ = expected(*row)
    return f"smart_2_2_{rule}-" + "-".join(row)


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
def test_smart_2_2_enforcement_table(row: tuple[str, str, str, str, str]):
    level, interaction, compartment, rtype, query = row
    scope_type = {"match": "Observation", "wildcard": "*", "other": "Condition"}[rtype]
    scopes = ScopeSet.parse(f"{level}/{scope_type}.crs?category={LAB}")
    patient = PATIENT if compartment == "in" else "999"
    category = LAB_CODING if query == "matching" else VITALS_CODING
    if interaction == "s":
        params = {"category": LAB} if query == "matching" else {"category": "vital-signs"}
        kw: dict[str, Any] = {"search_params": params}
    else:
        kw = {"resource": observation(patient, category)}
    decision = check(scopes, interaction=interaction, resource_type="Observation", level_context=PATIENT,
                     user_access=EVERYONE, **kw)
    rule, allowed = expected(*row)
    assert decision.allowed is allowed, (rule, decision.reason)
    if allowed and interaction == "s":
        assert decision.compartment == (PATIENT if level == "patient" else None)
        assert decision.required_filters == (() if query == "matching" else ((("category", LAB),),))


# ---- patient compartment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "inside"),
    [
        ({"resourceType": "Patient", "id": PATIENT}, True),
        ({"resourceType": "Patient", "id": "999"}, False),
        ({"resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"}}, True),
        ({"resourceType": "Encounter", "subject": {"reference": f"Patient/{PATIENT}/_history/2"}}, True),
        ({"resourceType": "MedicationRequest", "subject": {"reference": "Patient/999"}}, False),
        ({"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{PATIENT}"}}, True),
        ({"resourceType": "Observation", "performer": [{"reference": f"Patient/{PATIENT}"}]}, True),
        ({"resourceType": "Procedure", "performer": [{"actor": {"reference": f"Patient/{PATIENT}"}}]}, True),
        ({"resourceType": "Observation", "subject": {"reference": f"https://other.example/Patient/{PATIENT}"}}, False),
        ({"resourceType": "Observation", "subject": {"reference": f"Patient/{PATIENT}0"}}, False),
        ({"resourceType": "Observation", "subject": "Patient/123"}, False),
        ({"resourceType": "Practitioner", "id": PATIENT}, False),
        ({"resourceType": "Observation"}, False),
    ],
)
def test_fhir_patient_compartment_membership(resource: dict[str, Any], inside: bool):
    assert in_patient_compartment(resource, PATIENT) is inside


def test_practitioner_is_not_in_the_patient_compartment():
    practitioner = {"resourceType": "Practitioner", "id": "p1"}
    assert not allows("patient/*.rs", "r", "Practitioner", resource=practitioner).allowed
    assert not allows("patient/Practitioner.rs", "s", "Practitioner").allowed
    assert allows("user/Practitioner.rs", "r", "Practitioner", resource=practitioner).allowed


def test_patient_scope_reads_the_launch_patient_only():
    assert allows("patient/Patient.r", "r", "Patient", resource={"resourceType": "Patient", "id": PATIENT}).allowed
    assert not allows("patient/Patient.r", "r", "Patient", resource={"resourceType": "Patient", "id": "9"}).allowed


def test_patient_scope_without_patient_in_context_is_refused():
    decision = allows("patient/*.rs", "s", "Observation", level_context=None)
    assert not decision.allowed and "no patient in context" in decision.reason


def test_patient_scope_needs_the_resource_for_instance_interactions():
    decision = allows("patient/Observation.rs", "r", "Observation")
    assert not decision.allowed and "needed" in decision.reason
    assert allows("system/Observation.rs", "r", "Observation").allowed


def test_patient_search_is_confined_to_the_compartment():
    decision = allows("patient/Observation.rs", "s", "Observation")
    assert decision.allowed and decision.compartment == PATIENT and decision.required_filters == ()


def test_create_under_patient_scope_must_be_for_that_patient():
    assert allows("patient/Observation.c", "c", "Observation", resource=observation()).allowed
    assert not allows("patient/Observation.c", "c", "Observation", resource=observation("999")).allowed


def test_resource_of_another_type_is_refused():
    decision = allows("system/*.cruds", "r", "Observation", resource={"resourceType": "Condition"})
    assert not decision.allowed


def test_unknown_interaction_is_a_programming_error():
    with pytest.raises(ValueError):
        allows("system/*.cruds", "x", "Observation")
    with pytest.raises(ValueError):
        allows("system/*.cruds", "rs", "Observation")


# ---- user/ and system/ --------------------------------------------------------------------------


def test_user_scope_is_limited_by_what_the_user_may_do():
    seen: list[tuple[str, str, object]] = []

    def only_own_lab(interaction: str, resource_type: str, resource: object, /) -> bool:
        seen.append((interaction, resource_type, resource))
        return interaction != "d"

    res = observation("999")
    assert allows("user/Observation.cruds", "r", "Observation", resource=res, user_access=only_own_lab).allowed
    assert not allows("user/Observation.cruds", "d", "Observation", resource=res, user_access=only_own_lab).allowed
    assert seen[0] == ("r", "Observation", res)
    assert not allows("user/Observation.rs", "r", "Observation", user_access=only_own_lab).allowed


def test_system_scope_allows_any_resource_of_its_type():
    assert allows("system/Observation.rs", "r", "Observation", resource=observation("999")).allowed
    assert not allows("system/Observation.rs", "r", "Condition", resource={"resourceType": "Condition"}).allowed


# ---- v2 query restrictions ----------------------------------------------------------------------


def test_search_carrying_the_restriction_needs_no_filter():
    decision = allows(f"user/Observation.rs?category={LAB}", "s", "Observation", search_params={"category": LAB})
    assert decision.allowed and decision.required_filters == ()


def test_several_restricted_scopes_give_alternative_filters():
    scopes = f"user/Observation.rs?category={LAB} user/Observation.rs?code=http://loinc.org|2345-7"
    decision = allows(scopes, "s", "Observation")
    assert decision.allowed
    assert set(decision.required_filters) == {(("category", LAB),), (("code", "http://loinc.org|2345-7"),)}


def test_an_unrestricted_scope_wins_over_restricted_ones():
    decision = allows(f"user/Observation.rs?category={LAB} user/Observation.s", "s", "Observation")
    assert decision.allowed and decision.required_filters == ()
    assert str(decision.scope) == "user/Observation.s"


def test_mixed_levels_never_widen_a_patient_restriction():
    decision = allows(f"patient/Observation.rs user/Observation.rs?category={LAB}", "s", "Observation")
    assert decision.allowed and decision.compartment is None and decision.required_filters == ((("category", LAB),),)


def test_restriction_that_cannot_be_evaluated_on_a_resource_is_refused_but_searchable():
    scope = "system/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes"
    assert not allows(scope, "r", "Observation", resource=observation()).allowed
    decision = allows(scope, "s", "Observation")
    assert decision.allowed and decision.required_filters


def test_search_results_can_be_post_filtered_with_the_resource():
    scope = f"patient/Observation.s?category={LAB}"
    assert allows(scope, "s", "Observation", resource=observation()).allowed
    assert not allows(scope, "s", "Observation", resource=observation(category=VITALS_CODING)).allowed
    assert not allows(scope, "s", "Observation", resource=observation("999")).allowed


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ((("category", LAB),), True),
        ((("category", "laboratory"),), True),
        ((("category", "http://terminology.hl7.org/CodeSystem/observation-category|"),), True),
        ((("category", "|laboratory"),), False),
        ((("category", "http://other|laboratory"),), False),
        ((("category", "vital-signs,laboratory"),), True),
        ((("category", "vital-signs,"),), False),
        ((("category", "|"),), False),
        ((("code", "http://loinc.org|2345-7"), ("category", "laboratory")), True),
        ((("code", "http://loinc.org|9999-9"), ("category", "laboratory")), False),
        ((("status", "final"),), True),
        ((("status", "http://hl7.org/fhir/observation-status|final"),), False),
        ((("subject", "Patient/123"),), False),
        ((), True),
    ],
)
def test_query_restriction_matching_on_a_resource(query: tuple[tuple[str, str], ...], matches: bool):
    assert matches_query(observation(), query) is matches


def test_coding_without_system_matches_bar_code():
    resource = {"resourceType": "Observation", "category": {"coding": [{"code": "laboratory"}]}}
    assert matches_query(resource, (("category", "|laboratory"),))


# ---- the guard adapter --------------------------------------------------------------------------


def principal(scope: str, **claims: Any) -> Principal:
    return Principal("u1", "app", frozenset(scope.split()), {"scope": scope, **claims}, "t")


def test_smart_permissions_is_a_guard_permission_policy():
    policy: PermissionPolicy = SmartPermissions(resource_types=("Observation", "Condition"))
    caller = principal(f"patient/*.read user/Observation.c?category={LAB} openid patient/Bad.xx")
    granted = policy(caller)
    assert {"patient/*.r", "patient/*.s", "patient/Observation.r", "patient/Condition.s"} <= granted
    assert f"user/Observation.c?category={LAB}" in granted
    assert "user/Observation.c" not in granted  # a restricted scope never passes for an unrestricted route
    assert "openid" in granted  # other scopes as they are
    assert not any("Bad" in p for p in granted)  # a malformed resource scope grants nothing

    guarded = dataclasses.replace(caller, permissions=granted)
    Guard.require(guarded, permissions=["patient/Observation.r"])
    with pytest.raises(InsufficientScope):
        Guard.require(guarded, permissions=["patient/Observation.c"])


def test_token_scopes_drop_malformed_clinical_scopes():
    assert token_scopes(principal("patient/Observation.sr patient/Observation.rs")).tokens() == (
        "patient/Observation.rs",
    )


def test_smart_access_checks_with_the_token_patient():
    access = SmartAccess.from_principal(principal("patient/Observation.rs launch/patient", patient=PATIENT))
    assert access.patient == PATIENT
    assert access.check("r", "Observation", resource=observation()).allowed
    assert not access.check("r", "Observation", resource=observation("999")).allowed
    with pytest.raises(InsufficientScope) as raised:
        access.require("d", "Observation", resource=observation())
    assert raised.value.status_code == 403
    assert access.require("s", "Observation").compartment == PATIENT


def test_smart_access_ignores_non_string_context_claims():
    access = SmartAccess.from_principal(principal("patient/*.rs", patient=123, fhirUser="Practitioner/9"))
    assert access.patient is None and access.fhir_user == "Practitioner/9"
    assert not access.check("s", "Observation").allowed


def test_user_access_applies_to_user_scopes_only():
    def nobody(interaction: str, resource_type: str, resource: object, /) -> bool:
        return False

    assert allows("system/Observation.rs", "r", "Observation", user_access=nobody).allowed
    assert not allows("user/Observation.rs", "s", "Observation", user_access=nobody).allowed


# ---- the library default and writes (issue "Who sees which patient" items 5 and 6) ----------------


@pytest.mark.parametrize("interaction", list("crs"))
def test_smart_policy_default_refuses_user_scopes_without_an_entitlement(interaction: str):
    # the attack: a patient user with user/*.rs read every patient because check() allowed user/ by default
    resource = None if interaction == "s" else observation("999")
    decision = check(ScopeSet.parse("user/*.cruds"), interaction=interaction, resource_type="Observation",
                     level_context=None, resource=resource)
    assert not decision.allowed and "no user entitlement" in decision.reason
    assert check(ScopeSet.parse("user/*.cruds"), interaction=interaction, resource_type="Observation",
                 level_context=None, resource=resource, user_access=EVERYONE).allowed


def test_fhir_r4_compartment_write_naming_oneself_as_performer_is_refused():
    # the attack: a patient/ write token filed an Observation in another chart by naming itself performer
    foreign = {**observation("999"), "performer": [{"reference": f"Patient/{PATIENT}"}]}
    assert allows("patient/Observation.r", "r", "Observation", resource=foreign).allowed  # reads: any element
    assert not allows("patient/Observation.c", "c", "Observation", resource=foreign).allowed
    assert not allows("patient/Observation.u", "u", "Observation", resource=foreign).allowed
    assert not allows("patient/Observation.d", "d", "Observation", resource=foreign).allowed
    assert allows("patient/Observation.c", "c", "Observation", resource=observation()).allowed


def test_fhir_r4_compartment_write_without_the_filing_element_is_refused():
    lonely = {"resourceType": "Observation", "status": "final", "performer": [{"reference": f"Patient/{PATIENT}"}]}
    two = {**observation(), "subject": [{"reference": f"Patient/{PATIENT}"}, {"reference": "Patient/999"}]}
    assert not allows("patient/Observation.c", "c", "Observation", resource=lonely).allowed
    assert not allows("patient/Observation.c", "c", "Observation", resource=two).allowed


def test_smart_patient_scope_never_creates_a_patient_and_updates_only_the_context_patient():
    assert not allows("patient/Patient.cu", "c", "Patient", resource={"resourceType": "Patient"}).allowed
    assert allows("patient/Patient.u", "u", "Patient", resource={"resourceType": "Patient", "id": PATIENT}).allowed
    assert not allows("patient/Patient.u", "u", "Patient", resource={"resourceType": "Patient", "id": "999"}).allowed


@pytest.mark.parametrize(("resource", "patient"), [
    ({"resourceType": "Condition", "subject": {"reference": "Patient/1"}, "asserter": {"reference": "Patient/2"}}, "1"),
    ({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1/_history/3"}}, "1"),
    ({"resourceType": "Coverage", "beneficiary": {"reference": "Patient/4"}, "payor": [{"reference": "Patient/5"}]},
     "4"),
    ({"resourceType": "Observation", "subject": {"reference": "Group/1"}}, None),
    ({"resourceType": "Practitioner", "id": "1"}, None),
    ({"resourceType": "Patient", "id": "7"}, "7"),
])
def test_fhir_r4_compartment_filing_element(resource: dict[str, Any], patient: str | None):
    assert filed_under(resource) == patient
