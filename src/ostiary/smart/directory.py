"""What the launch pages need from the FHIR data: patients, encounters, practitioners (as FHIR JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["ClinicalDirectory", "display_name"]

Resource = Mapping[str, Any]


class ClinicalDirectory(Protocol):
    async def patients(self, text: str | None, limit: int) -> Sequence[Resource]:
        """Patients whose name contains `text` (all when None), at most `limit`."""
    async def patient(self, patient_id: str) -> Resource | None: ...
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
