"""The patient picker of a sign-in (SMART App Launch): exactly the patients this user may see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..errors import PageError
from ..server.authorize import AuthorizationRequest
from ..smart.directory import display_name
from .context import provider_of
from .render import page

__all__ = ["PICKER_PAGE", "patient_summaries", "render_patient_picker"]

PICKER_PAGE = 25  # patients per picker page


def patient_summaries(patients: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for pt in patients:
        detail = " · ".join(str(x) for x in (pt.get("birthDate"), pt.get("gender")) if x)
        out.append({"id": str(pt.get("id")), "name": display_name(pt) or str(pt.get("id")),
                    "detail": detail})
    return out


async def render_patient_picker(request: Request, req: AuthorizationRequest, interaction_id: str,
                                client_name: str, csrf: str, user_id: str, status: int = 200) -> Response:
    """The picker: exactly the patients this user may see, searchable and paged, none pre-selected."""
    p = provider_of(request)
    if p.directory is None:
        raise PageError("invalid_request", "No patient data is available to choose from.", 503)
    entitlement = await p.patient_access.entitlement(user_id)
    query = (request.query_params.get("q") or "").strip()[:100] or None
    page_number = _page_number(request.query_params.get("page"))
    only = None if entitlement.everyone else entitlement.patients
    found = await p.directory.patients(query, PICKER_PAGE + 1, offset=page_number * PICKER_PAGE, only=only)
    patients = patient_summaries(found[:PICKER_PAGE])
    base = f"/interaction/{interaction_id}"

    def link(number: int) -> str:
        return base + "?" + urlencode({**({"q": query} if query else {}), "page": number})

    return page(request, "patient_picker.html", {
        "client_name": client_name, "csrf_token": csrf, "patients": patients, "query": query,
        "action": base + "/patient", "search_action": base, "first": page_number * PICKER_PAGE + 1,
        "last": page_number * PICKER_PAGE + len(patients),
        "next_url": link(page_number + 1) if len(found) > PICKER_PAGE else None,
        "previous_url": link(page_number - 1) if page_number > 0 else None,
    }, status=status)


def _page_number(value: str | None) -> int:
    return min(int(value), 10_000) if value and value.isdigit() and len(value) < 6 else 0
