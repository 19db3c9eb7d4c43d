"""FHIR resources in SQL: one JSON row per resource, versioned, indexed by patient compartment.

Only the current version is kept (no history). Searches read the rows of one type (or of one
patient's compartment of that type) through the (type, patient_id) index and filter in Python.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..smart.directory import display_name
from ..smart.policy import PATIENT_COMPARTMENT
from .schema import fhir_resources as table

__all__ = ["FhirStore", "compartment_of", "get_resource", "now_instant", "search_patients"]

Json = dict[str, Any]


def now_instant() -> str:
    """A FHIR instant in UTC with millisecond precision."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compartment_of(resource: Mapping[str, Any]) -> str | None:
    """The patient id a resource is indexed under: itself for a Patient, else its subject / patient."""
    resource_type = resource.get("resourceType")
    if resource_type == "Patient":
        value = resource.get("id")
        return value if isinstance(value, str) else None
    for element in ("subject", "patient"):
        if element not in PATIENT_COMPARTMENT.get(str(resource_type), ()):
            continue
        ref = resource.get(element)
        reference = ref.get("reference") if isinstance(ref, Mapping) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            return reference.split("/")[1] or None
    return None


def _stamp(resource: Json, version: int, last_updated: str) -> Json:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = last_updated
    return {**resource, "meta": meta}


class FhirStore:
    """Resources of any type. ``create`` assigns the id; ``update`` is a compare-and-set on the version."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def read(self, resource_type: str, resource_id: str) -> Json | None:
        """The current version, or None."""
        query = select(table.c.json).where(and_(table.c.resource_type == resource_type, table.c.id == resource_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else dict(orjson.loads(row[0]))

    async def scan(self, resource_type: str, patient_id: str | None = None) -> list[Json]:
        """Every resource of a type (in id order), or only those stored under ``patient_id``."""
        query = select(table.c.json).where(table.c.resource_type == resource_type)
        if patient_id is not None:
            query = query.where(table.c.patient_id == patient_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(table.c.id))).all()
        return [dict(orjson.loads(r[0])) for r in rows]

    async def create(self, resource: Mapping[str, Any]) -> Json:
        """Store a new resource under a fresh id (any id in it is ignored); returns it with id and meta."""
        stored = _stamp({**resource, "id": uuid.uuid4().hex}, 1, now_instant())
        async with self.engine.begin() as conn:
            await conn.execute(insert(table).values(**self._row(stored, 1)))
        return stored

    async def update(self, resource: Mapping[str, Any], expected_version: int) -> Json | None:
        """Replace the resource stored at ``expected_version``; None if it changed meanwhile (or is gone)."""
        version = expected_version + 1
        stored = _stamp(dict(resource), version, now_instant())
        row = self._row(stored, version)
        query = (
            update(table)
            .where(and_(table.c.resource_type == row["resource_type"], table.c.id == row["id"],
                        table.c.version == expected_version))
            .values(version=version, last_updated=row["last_updated"], patient_id=row["patient_id"],
                    json=row["json"])
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(query)
        return stored if result.rowcount == 1 else None

    async def insert_missing(self, resources: Iterable[Mapping[str, Any]]) -> int:
        """Insert each resource (with its own id) unless one of that type and id exists; returns how many."""
        wanted = list(resources)
        async with self.engine.begin() as conn:
            existing = {(t, i) for t, i in (await conn.execute(select(table.c.resource_type, table.c.id))).all()}
            rows = [
                self._row(_stamp(dict(r), 1, now_instant()), 1)
                for r in wanted
                if (r["resourceType"], r["id"]) not in existing
            ]
            if rows:
                try:
                    await conn.execute(insert(table), rows)
                except IntegrityError:  # another node loaded the same rows first
                    return 0
        return len(rows)

    @staticmethod
    def _row(resource: Json, version: int) -> dict[str, Any]:
        return {
            "resource_type": resource["resourceType"],
            "id": resource["id"],
            "version": version,
            "last_updated": resource["meta"]["lastUpdated"],
            "patient_id": compartment_of(resource),
            "json": orjson.dumps(resource).decode(),
        }


async def get_resource(store: FhirStore, resource_type: str, resource_id: str) -> Json | None:
    """The resource, or None (for the launch pages: no access check is made here)."""
    return await store.read(resource_type, resource_id)


async def search_patients(store: FhirStore, text: str | None, limit: int, *, offset: int = 0,
                          only: Collection[str] | None = None) -> list[Json]:
    """Patients whose name contains ``text`` (case-insensitive; all if empty), by name, from ``offset``,
    at most ``limit``; only those whose id is in ``only`` when given."""
    needle = (text or "").strip().casefold()
    wanted = None if only is None else set(only)
    found = [p for p in await store.scan("Patient")
             if needle in display_name(p).casefold() and (wanted is None or p.get("id") in wanted)]
    found.sort(key=lambda p: (display_name(p).casefold(), str(p.get("id"))))
    return found[max(offset, 0): max(offset, 0) + max(limit, 0)]
