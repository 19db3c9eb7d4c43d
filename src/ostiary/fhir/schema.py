"""The FHIR resource table, in the shared ``metadata`` so that the migration test compares it."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from ..store.sql.schema import metadata

__all__ = ["fhir_resources"]

fhir_resources = Table(
    "fhir_resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),  # FHIR R4 id: [A-Za-z0-9\-\.]{1,64}
    Column("version", Integer, nullable=False),
    Column("last_updated", String(40), nullable=False),  # FHIR instant, UTC
    Column("patient_id", String(64)),  # the patient compartment it is stored under (subject / patient)
    Column("json", Text, nullable=False),
    Index("ix_fhir_resources_type_patient", "resource_type", "patient_id"),
)
