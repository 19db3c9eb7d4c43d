"""The FHIR R4 Patient compartment: which resources belong to a patient, and under which element a write files them."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FILING_ELEMENT", "PATIENT_COMPARTMENT", "element_values", "filed_under", "in_patient_compartment"]

Resource = Mapping[str, object]

# FHIR R4 CompartmentDefinition "patient": the elements through which a resource joins the
# compartment (the definition lists search parameters; these are the elements behind them).
# A type not listed here (Practitioner, Organization, Medication, Location, ...) is never in it.
PATIENT_COMPARTMENT: Mapping[str, tuple[str, ...]] = {
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "CarePlan": ("subject",),
    "CareTeam": ("subject", "participant.member"),
    "Condition": ("subject", "asserter"),
    "Coverage": ("policyHolder", "subscriber", "beneficiary", "payor"),
    "DiagnosticReport": ("subject",),
    "DocumentReference": ("subject", "author"),
    "Encounter": ("subject",),
    "FamilyMemberHistory": ("patient",),
    "Goal": ("subject",),
    "Immunization": ("patient",),
    "MedicationAdministration": ("subject", "performer.actor"),
    "MedicationDispense": ("subject", "receiver"),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "Observation": ("subject", "performer"),
    "Procedure": ("subject", "performer.actor"),
    "QuestionnaireResponse": ("subject", "author"),
    "RelatedPerson": ("patient",),
    "ServiceRequest": ("subject", "performer"),
    "Specimen": ("subject",),
}

# The one element that files a resource in a patient's compartment: the resource is *about* that
# patient (the CompartmentDefinition's subject/patient parameter; Coverage's beneficiary). Secondary
# references (performer, asserter, author, recorder, receiver, ...) put a resource in the
# compartment for reads only: a write is decided by this element alone (issue: writes stay in the
# compartment), so naming oneself as performer never files a record in another patient's chart.
FILING_ELEMENT: Mapping[str, str] = {
    resource_type: "beneficiary" if resource_type == "Coverage" else paths[0]
    for resource_type, paths in PATIENT_COMPARTMENT.items()
}


def in_patient_compartment(resource: Resource, patient: str) -> bool:
    """Whether ``resource`` is in the compartment of Patient ``patient`` (FHIR R4 compartments).

    Only relative references (``Patient/<id>``, optionally with ``/_history/<v>``) count: the FHIR
    API should make references to its own base relative first. Patient.link is not followed.
    """
    resource_type = resource.get("resourceType")
    if resource_type == "Patient":
        return resource.get("id") == patient
    paths = PATIENT_COMPARTMENT.get(resource_type) if isinstance(resource_type, str) else None
    return any(_patient_of(value) == patient for path in paths or () for value in element_values(resource, path))


def filed_under(resource: Resource) -> str | None:
    """The patient a write files ``resource`` under: a Patient's own id, else the single Patient reference
    in its filing element; None when there is none, several, or the type is outside the compartment."""
    resource_type = resource.get("resourceType")
    if resource_type == "Patient":
        value = resource.get("id")
        return value if isinstance(value, str) and value else None
    element = FILING_ELEMENT.get(resource_type) if isinstance(resource_type, str) else None
    values = element_values(resource, element) if element else []
    patients = {_patient_of(v) for v in values}
    return patients.pop() if len(values) == 1 and len(patients) == 1 else None


def element_values(node: object, path: str) -> list[object]:
    """Every value at a dotted element path, flattening lists on the way."""
    nodes = [node]
    for part in path.split("."):
        found: list[object] = []
        for item in nodes:
            value = item.get(part) if isinstance(item, Mapping) else None
            found.extend(value if isinstance(value, list) else [] if value is None else [value])
        nodes = found
    return nodes


def _patient_of(value: object) -> str | None:
    """The id of a relative ``Patient/<id>`` (or ``Patient/<id>/_history/<v>``) reference, else None."""
    reference = value.get("reference") if isinstance(value, Mapping) else None
    if not isinstance(reference, str):
        return None
    parts = reference.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    return parts[1] if len(parts) == 2 and parts[0] == "Patient" and parts[1] else None
