"""Parsing and validating FHIR JSON with the fhir.resources R4B models (close to R4)."""

from __future__ import annotations

import functools
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from .errors import FhirError

__all__ = ["parse_resource", "validate_resource"]

_MAX_ISSUES = 5


@functools.cache
def _model(resource_type: str) -> type[FHIRAbstractModel]:
    return get_fhir_model_class(resource_type)


def _describe(exc: ValidationError) -> str:
    issues = []
    for error in exc.errors()[:_MAX_ISSUES]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "(resource)"
        issues.append(f"{where}: {error.get('msg', 'invalid')}")
    more = exc.error_count() - _MAX_ISSUES
    return "; ".join(issues) + (f"; and {more} more" if more > 0 else "")


def parse_resource(body: bytes, resource_type: str) -> dict[str, Any]:
    """The JSON object in ``body``, which must be a ``resource_type``; raises FhirError 400."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FhirError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise FhirError(400, "the body must be a JSON object (a FHIR resource)")
    if data.get("resourceType") != resource_type:
        raise FhirError(400, f"resourceType must be {resource_type!r}")
    return data


def validate_resource(resource: dict[str, Any]) -> None:
    """Raise FhirError 400 with the validation messages unless ``resource`` is valid FHIR."""
    try:
        _model(str(resource["resourceType"])).model_validate(resource)
    except ValidationError as exc:
        raise FhirError(400, f"invalid {resource['resourceType']}: {_describe(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise FhirError(400, f"invalid {resource['resourceType']}: {exc}") from None
