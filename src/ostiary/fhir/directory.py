"""The launch pages' view of the FHIR data (ostiary.smart.directory.ClinicalDirectory)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .store import FhirStore, get_resource, search_patients

__all__ = ["FhirDirectory"]


class FhirDirectory:
    def __init__(self, store: FhirStore) -> None:
        self._store = store

    async def patients(self, text: str | None, limit: int) -> Sequence[Mapping[str, Any]]:
        return await search_patients(self._store, text, limit)

    async def patient(self, patient_id: str) -> Mapping[str, Any] | None:
        if not patient_id or len(patient_id) > 64:
            return None
        return await get_resource(self._store, "Patient", patient_id)

    async def encounters(self, patient_id: str, limit: int) -> Sequence[Mapping[str, Any]]:
        found = await self._store.scan("Encounter", patient_id)
        found.sort(key=lambda e: str((e.get("period") or {}).get("start", "")), reverse=True)
        return found[:limit]

    async def practitioners(self, limit: int) -> Sequence[Mapping[str, Any]]:
        return (await self._store.scan("Practitioner"))[:limit]
