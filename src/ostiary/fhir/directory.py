"""The launch pages' view of the FHIR data (ostiary.smart.directory.ClinicalDirectory)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from .store import FhirStore, get_resource, search_patients

__all__ = ["FhirDirectory"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


class FhirDirectory:
    def __init__(self, store: FhirStore) -> None:
        self._store = store

    async def patients(self, text: str | None, limit: int, *, offset: int = 0,
                       only: Collection[str] | None = None) -> Sequence[Mapping[str, Any]]:
        return await search_patients(self._store, text, limit, offset=offset, only=only)

    async def patient(self, patient_id: str) -> Mapping[str, Any] | None:
        return await self.resource("Patient", patient_id)

    async def resource(self, resource_type: str, resource_id: str) -> Mapping[str, Any] | None:
        if not _ID.fullmatch(resource_id) or not _TYPE.fullmatch(resource_type):
            return None
        return await get_resource(self._store, resource_type, resource_id)

    async def encounters(self, patient_id: str, limit: int) -> Sequence[Mapping[str, Any]]:
        found = await self._store.scan("Encounter", patient_id)
        found.sort(key=lambda e: str((e.get("period") or {}).get("start", "")), reverse=True)
        return found[:limit]

    async def practitioners(self, limit: int) -> Sequence[Mapping[str, Any]]:
        return (await self._store.scan("Practitioner"))[:limit]
