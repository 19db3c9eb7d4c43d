"""Which patients a user may see, and the ``UserAccess`` that enforces it on user/ scopes.

An ``Entitlement`` is decided by the server (``ostiary.server.policy.patients``) from the user's
access facts; the FHIR API, the FHIR gateway and any embedding app turn it into the ``UserAccess``
given to ``ostiary.smart.policy.check``. It never widens a scope, it only narrows user/ ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .compartment import PATIENT_COMPARTMENT, filed_under, in_patient_compartment
from .policy import EVERYONE, UserAccess

__all__ = ["NO_ACCESS", "REFERENCE_TYPES", "Entitlement", "entitlement_from_claim", "user_access_for"]

# Types outside the Patient compartment that a user with some patients may read (who treats them,
# where): never written by a restricted user. Anything else outside the compartment is refused.
REFERENCE_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location", "Medication"})


@dataclass(frozen=True, slots=True)
class Entitlement:
    """The patients a user may see: everyone, or exactly ``patients`` (empty: no clinical data)."""

    everyone: bool = False
    patients: frozenset[str] = frozenset()

    def allows(self, patient_id: str | None) -> bool:
        return patient_id is not None and (self.everyone or patient_id in self.patients)

    @property
    def empty(self) -> bool:
        return not self.everyone and not self.patients

    def to_claim(self) -> dict[str, Any]:
        """For an introspection answer (never a JWT claim: the list can be long and must stay current)."""
        return {"all": True} if self.everyone else {"patients": sorted(self.patients)}


NO_ACCESS = Entitlement()


def entitlement_from_claim(value: object) -> Entitlement:
    """The inverse of ``to_claim``; anything malformed is no access (fail closed)."""
    if not isinstance(value, Mapping):
        return NO_ACCESS
    if value.get("all") is True:
        return Entitlement(everyone=True)
    patients = value.get("patients")
    if isinstance(patients, list) and all(isinstance(p, str) and p for p in patients):
        return Entitlement(patients=frozenset(patients))
    return NO_ACCESS


def user_access_for(entitlement: Entitlement) -> UserAccess:
    """The ``UserAccess`` for user/ scopes of a user with ``entitlement``.

    Reads follow every compartment element; writes only the filing element (subject / patient),
    which must name an allowed patient on create and on update. A restricted user never creates a
    Patient; a search is allowed on compartment types and the caller filters each result.
    """
    if entitlement.everyone:
        return EVERYONE
    allowed = entitlement.patients

    def decide(interaction: str, resource_type: str, resource: Mapping[str, object] | None, /) -> bool:
        if not allowed:
            return False
        if resource_type in REFERENCE_TYPES:
            return interaction in "rs"
        if resource_type != "Patient" and resource_type not in PATIENT_COMPARTMENT:
            return False
        if resource is None:
            return interaction == "s"
        if interaction in "rs":
            return any(in_patient_compartment(resource, p) for p in allowed)
        if interaction == "c" and resource_type == "Patient":
            return False
        return filed_under(resource) in allowed

    return decide
