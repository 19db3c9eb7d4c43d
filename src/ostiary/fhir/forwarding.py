"""What the FHIR gateway sends upstream and what it lets back (docs/security.md, "The FHIR gateway").

Requests: only allow-listed headers cross, the gateway sets ``Accept``, ``Content-Type`` and
``Prefer: handling=strict`` itself, and search parameters are parsed once and re-encoded, so the
upstream reads exactly what the gateway checked. Answers: read up to a size cap, and every resource
in them is checked by :func:`may_return` (larger answers are refused, never passed unchecked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from starlette.datastructures import Headers
from starlette.responses import Response

from ..server.audit import audit
from .access import Access
from .errors import FHIR_JSON, FhirError, operation_outcome

__all__ = ["MAX_RESPONSE_BYTES", "Answer", "checked", "may_return", "parameters", "prefer", "read_answer",
           "search_form", "unchecked", "upstream_headers"]

log = logging.getLogger("ostiary.fhir.gateway")

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# Caller headers that may reach the upstream; everything else (Cookie, Authorization, Forwarded,
# X-Forwarded-*, Prefer as sent, Accept, Content-Type, ...) is dropped or set by the gateway.
REQUEST_HEADERS = frozenset({"accept-language", "if-match", "if-none-match", "if-modified-since", "x-request-id"})
RESPONSE_HEADERS = frozenset({"etag", "last-modified", "location", "content-location", "retry-after"})
RETURN_VALUES = frozenset({"minimal", "representation", "OperationOutcome"})  # FHIR R4 http.html#ops
_FORM = "application/x-www-form-urlencoded"
_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})


def prefer(values: Sequence[str]) -> str:
    """The Prefer header sent upstream: ``handling=strict`` always (a parameter the upstream does not
    know must fail the search, not be ignored), and of the caller's only an allow-listed ``return=``."""
    kept: list[str] = []
    for value in values:
        for token in value.split(","):
            name, _, choice = token.strip().partition("=")
            choice = choice.strip().strip('"')
            if name.strip().lower() == "return" and choice in RETURN_VALUES:
                kept = [f"return={choice}"]
    return ", ".join([*kept, "handling=strict"])


def upstream_headers(caller: Headers, credential: Mapping[str, str], content_type: str | None = None) -> dict[str, str]:
    """The headers of a request sent upstream: allow-listed ones of the caller's, then the gateway's."""
    out = {k: v for k, v in caller.items() if k.lower() in REQUEST_HEADERS}
    out.update({"Accept": "application/fhir+json", "Prefer": prefer(caller.getlist("prefer")), **credential})
    if content_type:
        out["Content-Type"] = content_type
    return out


def parameters(text: str) -> list[tuple[str, str]]:
    """Search parameters parsed once (percent-decoded as UTF-8); raises FhirError 400."""
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise FhirError(400, "search parameters must be UTF-8") from None


def search_form(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The parameters of a POST ``_search`` body: UTF-8 form data only (FHIR R4 search.html#Introduction);
    raises FhirError 415 for other content types and charsets, 400 for malformed UTF-8."""
    media, *params = (p.strip() for p in content_type.split(";"))
    if media.lower() != _FORM:
        raise FhirError(415, f"a _search body must be {_FORM}")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise FhirError(415, "a _search body must be UTF-8")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FhirError(400, "the _search body is not UTF-8") from None
    return parameters(text)


def may_return(access: Access, interaction: str, resource: Mapping[str, Any]) -> bool:
    """THE rule for answers: may this caller receive ``resource`` from ``interaction``? Every resource
    an upstream returns through the gateway is decided here (the same policy as the request)."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return False
    try:
        access.check(interaction, resource_type, resource=resource)
    except FhirError:
        return False
    return True


def _refuse(access: Access | None, reason: str) -> FhirError:
    audit("fhir_gateway_answer_refused", client_id=access.context.client_id if access else None, reason=reason)
    return FhirError(502, f"the upstream answer was refused: {reason}")


def _checked_bundle(access: Access, bundle: dict[str, Any]) -> bool:
    """Check a searchset entry by entry; drops included resources the caller may not see (True if any)."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise _refuse(access, "Bundle.entry is not a list")
    kept: list[Any] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue  # nothing to show without a resource (a bare fullUrl names another server's data)
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, dict) else None
        if mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
            kept.append(entry)  # the upstream's warnings about the search itself
        elif mode == "include":
            if may_return(access, "s", resource) or may_return(access, "r", resource):
                kept.append(entry)
        elif may_return(access, "s", resource):
            kept.append(entry)
        else:  # a match the narrowing should have excluded: the upstream ignored a parameter
            raise _refuse(access, f"a {resource.get('resourceType')} outside this token's access matched")
    if len(kept) == len(entries):
        return False
    audit("fhir_gateway_entries_dropped", client_id=access.context.client_id, dropped=len(entries) - len(kept))
    bundle["entry"] = kept
    return True


@dataclass(frozen=True, slots=True)
class Answer:
    """An upstream answer read up to the cap: status, the headers that may pass, body, and its JSON."""

    status: int
    headers: dict[str, str]
    body: bytes
    data: Any

    @property
    def resource_type(self) -> str | None:
        kind = self.data.get("resourceType") if isinstance(self.data, dict) else None
        return kind if isinstance(kind, str) else None

    def response(self, body: bytes | None = None) -> Response:
        return Response(self.body if body is None else body, status_code=self.status, headers=self.headers,
                        media_type=FHIR_JSON)


async def read_answer(answer: httpx.Response, cap: int, access: Access | None) -> Answer:
    """Read a streamed upstream answer, at most ``cap`` bytes; raises FhirError 502 beyond it."""
    declared = answer.headers.get("content-length", "")
    too_large = f"larger than the {cap} bytes the gateway checks; ask for fewer (_count)"
    if declared.isdigit() and int(declared) > cap:
        raise _refuse(access, too_large)
    body = bytearray()
    async for chunk in answer.aiter_bytes():
        body += chunk
        if len(body) > cap:
            raise _refuse(access, too_large)
    data: Any = None
    if body and answer.headers.get("content-type", "").split(";")[0].strip().lower() in _JSON_TYPES:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
    headers = {k: v for k, v in answer.headers.items() if k.lower() in RESPONSE_HEADERS}
    return Answer(answer.status_code, headers, bytes(body), data)


def unchecked(answer: Answer, access: Access | None) -> Response | None:
    """The response for an answer that carries no resource to check (304, an error, no body), else None.
    An error passes only as the upstream's OperationOutcome; a redirect is refused."""
    if answer.status == 304:
        return Response(status_code=304, headers=answer.headers)
    if 300 <= answer.status < 400:
        raise _refuse(access, f"the upstream redirected ({answer.status})")
    if answer.status >= 400:
        status = answer.status if answer.status < 500 else 502
        if answer.resource_type == "OperationOutcome":
            return Response(answer.body, status_code=status, headers=answer.headers, media_type=FHIR_JSON)
        outcome = operation_outcome(status, f"the upstream FHIR server answered {answer.status}")
        return Response(orjson.dumps(outcome), status_code=status, headers=answer.headers, media_type=FHIR_JSON)
    if not answer.body:
        return Response(status_code=answer.status, headers=answer.headers)
    if answer.data is None:
        raise _refuse(access, "not FHIR JSON")
    if answer.resource_type == "OperationOutcome":
        return answer.response()
    return None


def checked(answer: Answer, access: Access, interaction: str, resource_type: str) -> Response:
    """The answer to a search (a searchset, entry by entry) or a write (the resource written)."""
    response = unchecked(answer, access)
    if response is not None:
        return response
    if interaction == "s":
        if answer.resource_type != "Bundle":
            raise _refuse(access, "a search answered with something other than a Bundle")
        return answer.response(orjson.dumps(answer.data)) if _checked_bundle(access, answer.data) else answer.response()
    if answer.resource_type != resource_type or not may_return(access, interaction, answer.data):
        raise _refuse(access, f"the {answer.resource_type} returned is outside this token's access")
    return answer.response()
