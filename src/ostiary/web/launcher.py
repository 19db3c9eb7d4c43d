"""The EHR launcher: a small EHR for trying SMART apps, only for users with the `launch` role.

It lists only the patients the signed-in user may see, and creates launch values bound to the chosen
app and to this user, whose patient, encounter and fhirContext are checked like POST /smart/launch.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import PageError
from ..server.audit import audit
from ..server.consent import client_display_name
from ..server.requests import parse_form
from ..smart.directory import display_name
from ..smart.entitlements import Entitlement
from ..smart.launch import LaunchContext, verify_context
from ..store.identity import User
from .context import provider_of
from .kinds import KindRoute, page_route
from .patient_picker import patient_summaries
from .render import SESSION_COOKIE, get_cookie, page

__all__ = ["launcher_routes"]

LAUNCH_ROLE = "launch"
SIGN_IN = "/signin?" + urlencode({"return_to": "/smart/launcher"})


def _launcher_csrf(request: Request, session_digest: str) -> str:
    return provider_of(request).sealer.mac("launcher", session_digest)


async def _allowed(request: Request, user: User) -> Entitlement | None:
    """The user's patients when they hold the launch role (None: they may not use the launcher)."""
    p = provider_of(request)
    facts = await p.patient_access.facts.get(user.id)
    if facts is None or LAUNCH_ROLE not in facts.roles:
        audit("launcher_refused", sub=user.id, reason="no launch role")
        return None
    return await p.patient_access.entitlement(user.id)


async def launcher(request: Request) -> Response:
    p = provider_of(request)
    current = await p.signin.signed_in("/smart/launcher", get_cookie(request, SESSION_COOKIE))
    if current is None:  # the local sign-in: the same steps as for an app, second factor included
        return RedirectResponse(SIGN_IN, status_code=303)
    if p.directory is None or p.launches is None:
        raise PageError("invalid_request", "The launcher needs SMART and the FHIR data.", 503)
    session, user = current
    entitlement = await _allowed(request, user)
    if entitlement is None:
        raise PageError("access_denied", "Your account may not launch apps (it lacks the launch role).", 403)
    if request.method == "POST":
        return await _launch(request, session.digest, user, entitlement)
    only = None if entitlement.everyone else entitlement.patients
    patients = patient_summaries(await p.directory.patients(None, 100, only=only))
    wanted = request.query_params.get("patient")
    chosen = wanted if wanted and entitlement.allows(wanted) else (patients[0]["id"] if patients else None)
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


async def _launch(request: Request, session_digest: str, user: User, entitlement: Entitlement) -> Response:
    p = provider_of(request)
    assert p.launches is not None and p.directory is not None
    form, _ = parse_form(await request.body(), request.headers.get("content-type"))
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), _launcher_csrf(request, session_digest).encode()):
        raise PageError("invalid_request", "The form has expired. Please try again.", 403)
    client = await p.clients.get(form.get("client_id", ""))
    launch_url = client.extra.get("initiate_login_uri") if client else None
    patient = form.get("patient", "")
    if client is None or not launch_url or not entitlement.allows(patient):
        audit("launcher_refused", sub=user.id, reason="app or patient not allowed", patient=patient[:64])
        raise PageError("invalid_request", "Choose one of your patients and an app with a launch URL.")
    practitioner = form.get("practitioner")
    context = LaunchContext(
        patient=patient, encounter=form.get("encounter") or None, user=user.username,
        fhir_context=({"reference": f"Practitioner/{practitioner}"},) if practitioner else (),
        need_patient_banner=False, client_id=client.client_id,
    )
    await verify_context(context, p.directory)  # InvalidRequest: the error page says what is wrong
    value = await p.launches.create(context)
    sep = "&" if urlsplit(str(launch_url)).query else "?"
    target = f"{launch_url}{sep}{urlencode({'iss': p.settings.fhir_base_url, 'launch': value})}"
    return RedirectResponse(target, status_code=303)


def launcher_routes() -> list[KindRoute]:
    return [
        page_route("/smart/launcher", launcher, methods=["GET", "POST"]),
    ]
