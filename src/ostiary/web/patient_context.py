"""Whose records a consent is about: the patient an EHR launch (or the picker) put in context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..app.provider import Provider
from ..smart.directory import display_name
from ..store.identity import User

__all__ = ["patient_in_context"]


async def patient_in_context(provider: Provider, context: Mapping[str, Any], user: User) -> str | None:
    """The context patient's name when the user acts for someone else (not their own Patient record)."""
    patient_id = context.get("patient")
    if not isinstance(patient_id, str) or not patient_id:
        return None
    facts = await provider.patient_access.facts.get(user.id)  # fhirUser is an access fact (issue 8)
    if facts is not None and facts.fhir_user == f"Patient/{patient_id}":
        return None  # a patient's own records stay "your"
    resource = await provider.directory.patient(patient_id) if provider.directory is not None else None
    return (display_name(resource) if resource else "") or f"Patient/{patient_id}"
