"""SMART App Launch routes: smart-configuration, the EHR launch API, the patient picker, the EHR launcher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.provider import Provider
from ..errors import InsufficientScope, InvalidRequest, InvalidToken, NotFound
from ..server.audit import audit
from ..server.authorize import AuthorizationRequest, PageError, RedirectError
from ..server.interaction import Interaction
from ..smart.configuration import smart_configuration
from ..smart.directory import display_name
from ..smart.launch import parse_launch_request, verify_context
from ..store.identity import Session, User
from .errors import json_response, parse_json_body
from .kinds import KindRoute, api_route, page_route
from .pages import _interaction, error_page
from .render import SESSION_COOKIE, get_cookie, page
from .session_routes import bearer_token

__all__ = ["LAUNCH_SCOPE", "patient_summaries", "smart_routes"]

LAUNCH_SCOPE = "ehr:launch"  # the scope an EHR's client needs to create launch contexts


def provider_of(request: Request) -> Provider:
    provider: Provider = request.app.state.provider
    return provider


async def configuration(request: Request) -> Response:
    return json_response(smart_configuration(provider_of(request).metadata),
                         headers={"Cache-Control": "public, max-age=300"})


async def create_launch(request: Request) -> Response:
    """POST /smart/launch: an EHR (bearer token with scope ehr:launch) creates a launch value for one app.

    The token's `aud` must be this issuer (the default audience of client_credentials tokens) or this
    endpoint's URL; the launch must name a registered `client_id` and data of this FHIR base.
    """
    p = provider_of(request)
    if p.launches is None or p.directory is None:
        raise NotFound("SMART is disabled")
    found = await p.inspector.find(await bearer_token(request))
    if found is None or not found.active or found.kind != "access_token":
        raise InvalidToken("the access token is invalid, expired or revoked")
    aud = found.claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    issuer = p.settings.issuer
    if not {issuer, issuer + "/smart/launch"} & set(audiences):
        raise InvalidToken("the access token is not meant for this launch endpoint (aud)")
    if LAUNCH_SCOPE not in str(found.claims.get("scope", "")).split():
        raise InsufficientScope(f"creating a launch needs the {LAUNCH_SCOPE} scope")
    context = parse_launch_request(await parse_json_body(request, InvalidRequest))
    if await p.cached_clients.get(str(context.client_id)) is None:
        raise InvalidRequest("client_id is not a registered app")
    await verify_context(context, p.directory)
    value = await p.launches.create(context)
    audit("launch_created", client_id=found.claims.get("client_id"), app=context.client_id)
    return json_response({"launch": value, "expires_in": p.settings.smart.launch_lifetime,
                          "iss": p.settings.fhir_base_url}, status=201, headers={"Cache-Control": "no-store"})


def patient_summaries(patients: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for pt in patients:
        detail = " · ".join(str(x) for x in (pt.get("birthDate"), pt.get("gender")) if x)
        out.append({"id": str(pt.get("id")), "name": display_name(pt) or str(pt.get("id")),
                    "detail": detail})
    return out


PICKER_PAGE = 25  # patients per picker page


async def render_patient_picker(request: Request, req: AuthorizationRequest, interaction_id: str,
                                client_name: str, csrf: str, user_id: str, status: int = 200) -> Response:
    """The picker: exactly the patients this user may see, searchable and paged, none pre-selected."""
    p = provider_of(request)
    if p.directory is None:
        return error_page(request, _page_error("No patient data is available to choose from."), 503)
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


def _page_error(text: str) -> PageError:
    return PageError("invalid_request", text)


async def patient_submit(request: Request) -> Response:
    """The picker's answer: only when this interaction asked, only a patient the user may see, never
    over a patient already fixed (an EHR launch's)."""
    p = provider_of(request)
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction, form = found
    req = interaction.request
    patient_id = form.get("patient", "")
    current = await p.flow.session(get_cookie(request, SESSION_COOKIE))
    if current is None or not await _picker_due(request, interaction, current):
        audit("patient_pick_refused", client_id=req.client_id, reason="not asked", patient=patient_id[:64])
        return error_page(request, _page_error("No patient choice was asked for in this sign-in."), 400)
    if not patient_id or not await p.patient_access.may_pick(current[1].id, patient_id):
        audit("patient_pick_refused", sub=current[1].id, client_id=req.client_id, patient=patient_id[:64])
        return error_page(request, _page_error("Choose a patient from the list."), 400)
    await p.flow.save(interaction.with_request(replace(req, context={**req.context, "patient": patient_id})))
    return RedirectResponse(f"/interaction/{interaction.id}", status_code=303)


async def _picker_due(request: Request, interaction: Interaction, current: tuple[Session, User]) -> bool:
    """Whether this interaction is at the picker: sign-in and consent done, no patient fixed yet (an EHR
    launch's patient is never overridden), and the user has several patients to choose from."""
    p = provider_of(request)
    req = interaction.request
    client = await p.cached_clients.get(req.client_id)
    if client is None or req.context.get("patient") or await p.flow.pending(interaction, current) is not None:
        return False
    try:
        _, ask = await p.patient_access.settle(req, client, current[1])
    except RedirectError:
        return False
    return ask


def smart_routes(fhir_path: str) -> list[KindRoute]:
    from .launcher import launcher_routes  # the launcher builds on this module's picker helpers

    return [
        api_route("/.well-known/smart-configuration", configuration, methods=["GET"]),
        api_route(fhir_path + "/.well-known/smart-configuration", configuration, methods=["GET"]),
        api_route("/smart/launch", create_launch, methods=["POST"]),
        *launcher_routes(),
        page_route("/interaction/{interaction_id}/patient", patient_submit, methods=["POST"]),
    ]
