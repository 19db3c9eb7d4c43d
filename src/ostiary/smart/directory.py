"""What the launch pages need from the FHIR data: patients, encounters, practitioners (as FHIR JSON)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

__all__ = ["ClinicalDirectory", "display_name"]

Resource = Mapping[str, Any]


class ClinicalDirectory(Protocol):
    """Lookups on this server's own FHIR data (no access check is made here: callers decide)."""

    async def patients(self, text: str | None, limit: int, *, offset: int = 0,
                       only: Collection[str] | None = None) -> Sequence[Resource]:
        """Patients whose name contains `text` (all when None), by name, from `offset`, at most `limit`;
        only those whose id is in `only` when it is given."""
    async def patient(self, patient_id: str) -> Resource | None: ...
    async def resource(self, resource_type: str, resource_id: str) -> Resource | None:
        """Any resource of this FHIR base, or None (also for a malformed id)."""
    async def encounters(self, patient_id: str, limit: int) -> Sequence[Resource]: ...
    async def practitioners(self, limit: int) -> Sequence[Resource]: ...


def display_name(resource: Resource) -> str:
    """A person's name for people to read: HumanName.text, else given + family; "" without one."""
    for name in resource.get("name") or []:
        if not isinstance(name, dict):
            continue
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("given") or []), name.get("family") or ""]
        text = " ".join(str(p) for p in parts if p)
        if text:
            return text
    return ""
