"""SMART App Launch routes: smart-configuration, the EHR launch API, the patient picker, the EHR launcher."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import InsufficientScope, InvalidRequest, InvalidToken, NotFound
from ..server.authorize import AuthorizationRequest, PageError
from ..server.consent import client_display_name
from ..server.provider import Provider
from ..server.requests import parse_form
from ..smart.configuration import smart_configuration
from ..smart.directory import display_name
from ..smart.launch import LaunchContext, parse_launch_request
from .errors import json_response, parse_json_body
from .pages import _interaction, error_page
from .render import LAUNCHER_COOKIE, SESSION_COOKIE, get_cookie, page, set_cookie
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
    """POST /smart/launch: an EHR (bearer token with scope ehr:launch) creates a launch value."""
    p = provider_of(request)
    if p.launches is None:
        raise NotFound("SMART is disabled")
    found = await p.inspector.find(await bearer_token(request))
    if found is None or not found.active:
        raise InvalidToken("the access token is invalid, expired or revoked")
    if LAUNCH_SCOPE not in str(found.claims.get("scope", "")).split():
        raise InsufficientScope(f"creating a launch needs the {LAUNCH_SCOPE} scope")
    context = parse_launch_request(await parse_json_body(request, InvalidRequest))
    if p.directory is not None and context.patient and await p.directory.patient(context.patient) is None:
        raise InvalidRequest(f"no Patient/{context.patient}")
    value = await p.launches.create(context)
    return json_response({"launch": value, "expires_in": p.settings.smart.launch_lifetime,
                          "iss": p.settings.fhir_base_url}, status=201, headers={"Cache-Control": "no-store"})


def patient_summaries(patients: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for pt in patients:
        detail = " · ".join(str(x) for x in (pt.get("birthDate"), pt.get("gender")) if x)
        out.append({"id": str(pt.get("id")), "name": display_name(pt) or str(pt.get("id")),
                    "detail": detail})
    return out


async def render_patient_picker(request: Request, req: AuthorizationRequest, interaction_id: str,
                                client_name: str, csrf: str, status: int = 200) -> Response:
    p = provider_of(request)
    if p.directory is None:
        return error_page(request, _page_error("No patient data is available to choose from."), 503)
    query = (request.query_params.get("q") or "").strip()[:100] or None
    patients = patient_summaries(await p.directory.patients(query, 25))
    base = f"/interaction/{interaction_id}"
    return page(request, "patient_picker.html", {
        "client_name": client_name, "csrf_token": csrf, "patients": patients, "query": query,
        "action": base + "/patient", "search_action": base,
    }, status=status)


def _page_error(text: str) -> PageError:
    return PageError("invalid_request", text)


async def patient_submit(request: Request) -> Response:
    p = provider_of(request)
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction, form = found
    patient_id = form.get("patient", "")
    if p.directory is None or not patient_id or await p.directory.patient(patient_id) is None:
        return error_page(request, _page_error("Choose a patient from the list."), 400)
    req = interaction.request
    await p.flow.save(interaction.with_request(replace(req, context={**req.context, "patient": patient_id})))
    return RedirectResponse(f"/interaction/{interaction.id}", status_code=303)


# --- EHR launcher -------------------------------------------------------------------------------

def _launcher_csrf(request: Request, session_digest: str) -> str:
    return provider_of(request).sealer.mac("launcher", session_digest)


async def launcher(request: Request) -> Response:
    p = provider_of(request)
    current = await p.flow.session(get_cookie(request, SESSION_COOKIE))
    if current is None:
        return _launcher_login(request)
    if p.directory is None or p.launches is None:
        return error_page(request, _page_error("The launcher needs SMART and the FHIR data."), 503)
    session, user = current
    if request.method == "POST":
        return await _launch(request, session.digest, user.username)
    patients = patient_summaries(await p.directory.patients(None, 100))
    chosen = request.query_params.get("patient") or (patients[0]["id"] if patients else None)
    encounters = []
    if chosen:
        for enc in await p.directory.encounters(chosen, 25):
            period = (enc.get("period") or {}).get("start", "")
            kind = ((enc.get("class") or {}).get("display") or (enc.get("class") or {}).get("code") or "")
            encounters.append({"id": enc.get("id"), "name": f"{period[:10]} {kind}".strip() or enc.get("id")})
    practitioners = [{"id": pr.get("id"), "name": display_name(pr) or pr.get("id")}
                     for pr in await p.directory.practitioners(50)]
    # Names as every page shows them (no bidi or invisible characters); self-registered apps marked.
    apps = [{"client_id": c.client_id, "name": client_display_name(c, c.client_id)
             + ("" if c.trust_level == "admin" else " (unverified app)")}
            for c in await p.clients.list() if c.extra.get("initiate_login_uri")]
    return page(request, "launcher.html", {
        "username": user.username, "patients": patients, "patient": chosen, "encounters": encounters,
        "practitioners": practitioners, "apps": apps, "action": "/smart/launcher",
        "csrf_token": _launcher_csrf(request, session.digest),
    })


async def _launch(request: Request, session_digest: str, username: str) -> Response:
    p = provider_of(request)
    assert p.launches is not None and p.directory is not None
    form, _ = parse_form(await request.body(), request.headers.get("content-type"))
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), _launcher_csrf(request, session_digest).encode()):
        return error_page(request, _page_error("The form has expired. Please try again."), 403)
    client = await p.clients.get(form.get("client_id", ""))
    launch_url = client.extra.get("initiate_login_uri") if client else None
    patient = form.get("patient", "")
    if client is None or not launch_url or await p.directory.patient(patient) is None:
        return error_page(request, _page_error("Choose a patient and an app with a launch URL."), 400)
    practitioner = form.get("practitioner")
    context = LaunchContext(
        patient=patient, encounter=form.get("encounter") or None, user=username,
        fhir_context=({"reference": f"Practitioner/{practitioner}"},) if practitioner else (),
        need_patient_banner=False, client_id=client.client_id,
    )
    value = await p.launches.create(context)
    sep = "&" if urlsplit(str(launch_url)).query else "?"
    target = f"{launch_url}{sep}{urlencode({'iss': p.settings.fhir_base_url, 'launch': value})}"
    return RedirectResponse(target, status_code=303)


def _launcher_login(request: Request, error: str | None = None, status: int = 200) -> Response:
    p = provider_of(request)
    nonce = get_cookie(request, LAUNCHER_COOKIE) or p.sealer.mac("launcher-nonce", str(id(request)))
    response = page(request, "login.html", {
        "client_name": "the EHR launcher", "csrf_token": p.sealer.mac("launcher-login", nonce),
        "action": "/smart/launcher/login", "abort_action": "/smart/launcher", "error": error, "username": None,
    }, status=status)
    set_cookie(request, response, LAUNCHER_COOKIE, nonce, 900)
    return response


async def launcher_login(request: Request) -> Response:
    p = provider_of(request)
    form, _ = parse_form(await request.body(), request.headers.get("content-type"))
    nonce = get_cookie(request, LAUNCHER_COOKIE) or ""
    if not nonce or not hmac.compare_digest(form.get("csrf_token", "").encode(),
                                            p.sealer.mac("launcher-login", nonce).encode()):
        return _launcher_login(request, "The form has expired. Please try again.", 403)
    address = request.client.host if request.client else "unknown"
    result = await p.user_service.login(form.get("username", ""), form.get("password", ""), address)
    if result.user is None:
        msg = (f"Too many sign-in attempts. Try again in {result.retry_after} seconds." if result.retry_after
               else "Wrong username or password.")
        refused = _launcher_login(request, msg, 429 if result.retry_after else 400)
        if result.retry_after:
            refused.headers["Retry-After"] = str(result.retry_after)  # RFC 9110 §10.2.3
        return refused
    cookie, _ = await p.flow.log_in(result.user, get_cookie(request, SESSION_COOKIE))
    response = RedirectResponse("/smart/launcher", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, cookie, p.settings.oidc.session_lifetime)
    return response


def smart_routes(fhir_path: str) -> list[Route]:
    return [
        Route("/.well-known/smart-configuration", configuration, methods=["GET"]),
        Route(fhir_path + "/.well-known/smart-configuration", configuration, methods=["GET"]),
        Route("/smart/launch", create_launch, methods=["POST"]),
        Route("/smart/launcher", launcher, methods=["GET", "POST"]),
        Route("/smart/launcher/login", launcher_login, methods=["POST"]),
        Route("/interaction/{interaction_id}/patient", patient_submit, methods=["POST"]),
    ]
