"""FHIR errors: every refusal is an OperationOutcome with the HTTP status FHIR R4 (http.html) gives it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["FHIR_JSON", "FhirError", "fhir_response", "operation_outcome"]

FHIR_JSON = "application/fhir+json; charset=utf-8"

# status -> OperationOutcome.issue.code (IssueType value set)
_ISSUE_CODES = {
    400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
    406: "not-supported", 409: "conflict", 412: "conflict", 413: "too-costly", 415: "not-supported",
    422: "processing", 500: "exception", 502: "transient", 503: "transient",
}


class FhirError(Exception):
    """A request refused with ``status``; ``diagnostics`` is short and safe to show the caller."""

    def __init__(self, status: int, diagnostics: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return fhir_response(operation_outcome(self.status, self.diagnostics), self.status, self.headers)


def operation_outcome(status: int, diagnostics: str) -> dict[str, Any]:
    severity = "error" if status < 500 else "fatal"
    code = _ISSUE_CODES.get(status, "processing")
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code,
                                                           "diagnostics": diagnostics}]}


def fhir_response(body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=dict(headers or {}), media_type=FHIR_JSON)
