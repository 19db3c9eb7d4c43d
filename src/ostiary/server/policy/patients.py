"""Which patients a user may see, and which patient may be the context (SMART App Launch 2.2 leaves it to us).

Decided from the user's access facts (set by an administrator, ``ostiary.store.access``), never
from profile claims or anything a client or the user sends. By the type of ``fhirUser``:

| fhirUser | may see |
|---|---|
| Patient | their own compartment, plus the patients an administrator linked to them |
| RelatedPerson | the patient the RelatedPerson resource references |
| Practitioner, PractitionerRole | all patients when marked so (the demo user), else the listed patients |
| | and the members of the listed Group (default: none) |
| Person, none, anything that does not resolve | nothing |

``user/`` scopes are intersected with this (``ostiary.smart.entitlements.user_access_for``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ...errors import InvalidScope
from ...smart.directory import ClinicalDirectory
from ...smart.entitlements import NO_ACCESS, Entitlement
from ...smart.scopes import SmartScope, is_clinical, parse_clinical
from ...store import Client
from ...store.access import AccessFacts
from ..audit import audit

__all__ = ["FHIR_USER_TYPES", "USER_WRITE_TRUST", "PatientContext", "entitlement_of", "fhir_user_reference",
           "patient_context", "reduce_scopes", "trusted_for_user_writes"]

FHIR_USER_TYPES = frozenset({"Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Person"})
_PRACTITIONERS = frozenset({"Practitioner", "PractitionerRole"})
_CONTEXT_SCOPES = frozenset({"launch/patient"})


def fhir_user_reference(value: str, fhir_base: str) -> tuple[str, str]:
    """``(type, id)`` of a fhirUser given as ``Type/id`` or as an absolute URL on ``fhir_base``.

    Raises ValueError for another server's URL, an unknown type or a malformed id (SMART 2.2
    §fhirUser: Patient, Practitioner, PractitionerRole, RelatedPerson or Person).
    """
    relative = value
    if "://" in value:
        prefix = fhir_base.rstrip("/") + "/"
        if not value.startswith(prefix):
            raise ValueError(f"fhirUser must be a resource on this server's FHIR base {fhir_base}")
        relative = value[len(prefix):]
    kind, _, ident = relative.partition("/")
    if kind not in FHIR_USER_TYPES or not ident or "/" in ident or len(ident) > 64:
        raise ValueError("fhirUser must be Patient/ID, RelatedPerson/ID, Practitioner/ID, PractitionerRole/ID "
                         "or Person/ID")
    return kind, ident


async def entitlement_of(facts: AccessFacts | None, directory: ClinicalDirectory | None) -> Entitlement:
    """The patients the user with ``facts`` may see; NO_ACCESS whenever it cannot be determined."""
    if facts is None or not facts.fhir_user or directory is None:
        return NO_ACCESS
    kind, _, ident = facts.fhir_user.partition("/")
    if kind not in FHIR_USER_TYPES or await directory.resource(kind, ident) is None:
        audit("patient_access_unresolved", sub=facts.user_id, fhir_user=facts.fhir_user)
        return NO_ACCESS  # fail closed: a fhirUser that does not resolve grants nothing
    if kind == "Patient":
        return Entitlement(patients=frozenset({ident, *facts.patients}))
    if kind == "RelatedPerson":
        related = await directory.resource("RelatedPerson", ident)
        reference = (related or {}).get("patient") or {}
        target = str(reference.get("reference", "")) if isinstance(reference, dict) else ""
        patient = target.removeprefix("Patient/")
        return Entitlement(patients=frozenset({patient})) if target.startswith("Patient/") and patient else NO_ACCESS
    if kind in _PRACTITIONERS:
        if facts.all_patients:
            return Entitlement(everyone=True)
        return Entitlement(patients=frozenset(facts.patients) | await _group_members(facts.group, directory))
    return NO_ACCESS  # Person: an identity, not a clinical role


async def _group_members(group_id: str | None, directory: ClinicalDirectory) -> frozenset[str]:
    """Patient ids among a FHIR Group's active members (the Group lives on this FHIR base)."""
    group = await directory.resource("Group", group_id) if group_id else None
    members: set[str] = set()
    for member in (group or {}).get("member") or []:
        entity = member.get("entity") if isinstance(member, dict) else None
        reference = entity.get("reference") if isinstance(entity, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/") and not member.get("inactive"):
            members.add(reference.removeprefix("Patient/"))
    return frozenset(members)


# Trust levels (server.policy.clients) whose clients may write with user/ scopes: created by an
# administrator, or registered with an initial access token. Open and portal registrations may not.
USER_WRITE_TRUST = frozenset({"admin", "registrant"})


def trusted_for_user_writes(client: Client) -> bool:
    """Whether the registrant of ``client`` is trusted with user/ write scopes (c, u, d)."""
    return client.trust_level in USER_WRITE_TRUST


def reduce_scopes(scope: Sequence[str], entitlement: Entitlement, client: Client, user_id: str) -> tuple[str, ...]:
    """The scopes this user may give this client; each reduction is audited.

    No patients: no patient/ or user/ clinical scope and no launch/patient (never a patient/ token
    without a patient in context). user/ writes (c, u, d) only for a trusted registrant.
    """
    kept: list[str] = []
    dropped: list[str] = []
    trusted = trusted_for_user_writes(client)
    for item in scope:
        reduced = _reduce_one(item, entitlement, trusted)
        if reduced is not None:
            kept.append(reduced)
        if reduced != item:
            dropped.append(item)
    if dropped:
        audit("scope_reduced_for_user", sub=user_id, client_id=client.client_id, removed=" ".join(dropped))
    return tuple(kept)


def _reduce_one(item: str, entitlement: Entitlement, trusted: bool) -> str | None:
    if item in _CONTEXT_SCOPES:
        return None if entitlement.empty else item
    if not is_clinical(item):
        return item
    try:
        parsed = parse_clinical(item)
    except (InvalidScope, ValueError):
        return None
    if parsed.level not in ("patient", "user"):
        return item
    if entitlement.empty:
        return None
    if parsed.level == "user" and not trusted and set(parsed.interactions) & set("cud"):
        return _read_only(parsed)
    return item


def _read_only(scope: SmartScope) -> str | None:
    """The read part of a scope (``user/X.cruds`` -> ``user/X.rs``; v1 ``user/X.*`` -> ``user/X.read``)."""
    kept = "".join(c for c in scope.interactions if c in "rs")
    if not kept:
        return None
    if scope.version == 1:
        return f"{scope.level}/{scope.resource_type}.read"
    return str(replace(scope, interactions=kept))


@dataclass(frozen=True, slots=True)
class PatientContext:
    """The outcome for launch/patient: a patient without asking, or ask the user to pick (``ask``)."""

    patient: str | None
    ask: bool


async def patient_context(entitlement: Entitlement, directory: ClinicalDirectory | None) -> PatientContext:
    """Zero allowed: no context (launch/patient was already removed). One: it, without a picker. Several: ask."""
    if entitlement.empty or directory is None:
        return PatientContext(None, False)
    if not entitlement.everyone and len(entitlement.patients) == 1:
        (only,) = entitlement.patients
        return PatientContext(only if await directory.patient(only) is not None else None, False)
    return PatientContext(None, True)
