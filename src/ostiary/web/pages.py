"""Browser-facing routes: /authorize, the login / consent / account-choice steps, and responses."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import PageError, RedirectTarget
from ..server.authorize import query_redirect
from ..server.consent import client_display_name
from ..server.flow import AuthorizationResponse
from ..server.interaction import Interaction
from ..server.requests import parse_form, parse_form_noting_repeats
from ..server.signin.outcomes import ErrorPage, Finish, Outcome, ShowStep
from ..server.signin.service import InteractionService
from .context import provider_of
from .errors import error_page
from .kinds import KindRoute, page_route
from .patient_context import patient_in_context
from .patient_picker import render_patient_picker
from .render import (
    INTERACTION_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    describe_claims,
    describe_scopes,
    get_cookie,
    page,
    set_cookie,
)

__all__ = ["Browser", "interaction_form", "page_routes", "respond", "step_route"]


async def request_params(request: Request) -> tuple[dict[str, str], set[str]]:
    """Parameters of a GET (query) or POST (form) request, and the names given more than once."""
    if request.method == "POST":
        return parse_form_noting_repeats(await request.body(), request.headers.get("content-type"))
    params: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in request.query_params.multi_items():
        if not value:
            continue  # RFC 6749 §3.1: empty means absent
        if name in params:
            repeated.add(name)
        params[name] = value
    return params, repeated


def authorization_response(request: Request, target: RedirectTarget, params: Mapping[str, str]) -> Response:
    if target.response_mode == "form_post":
        return page(request, "form_post.html", {"redirect_uri": target.redirect_uri, "params": params},
                    form_target=target.redirect_uri)
    return RedirectResponse(query_redirect(target, params), status_code=303, headers={"Cache-Control": "no-store"})


async def deliver(request: Request, outcome: AuthorizationResponse | PageError,
                  interaction: Interaction | None = None) -> Response:
    """The answer for the client (a redirect or form_post), or an error page; ends the interaction."""
    if isinstance(outcome, PageError):
        return await _finish(request, error_page(request, outcome), interaction)
    return await _finish(request, authorization_response(request, outcome.target, outcome.params), interaction)


async def respond(request: Request, outcome: Outcome) -> Response:
    """The HTTP answer for what the sign-in service decided (the one place outcomes are rendered)."""
    p = provider_of(request)
    if isinstance(outcome, ErrorPage):
        return error_page(request, outcome.error, outcome.status)
    if isinstance(outcome, Finish):
        return await deliver(request, outcome.response, outcome.interaction)
    if isinstance(outcome, ShowStep):
        response = await render_step(request, outcome)
        if outcome.retry_after:
            response.headers["Retry-After"] = str(outcome.retry_after)  # RFC 9110 §10.2.3
        return response
    response = RedirectResponse(outcome.location, status_code=303, headers={"Cache-Control": "no-store"})
    if outcome.cookie is not None:
        set_cookie(request, response, SESSION_COOKIE, outcome.cookie, p.settings.oidc.session_lifetime)
    if outcome.starts is not None:
        set_cookie(request, response, INTERACTION_COOKIE, outcome.starts.id, p.settings.oidc.interaction_lifetime)
    if outcome.ends is not None:
        clear_cookie(request, response, INTERACTION_COOKIE)
    return response


async def authorize(request: Request) -> Response:
    p = provider_of(request)
    params, repeated = await request_params(request)
    return await respond(request, await p.signin.begin(params, repeated, get_cookie(request, SESSION_COOKIE)))


async def local_signin(request: Request) -> Response:
    """GET /signin?return_to=/account[&prompt=login][&acr_values=...]: sign in to this server's own pages."""
    q = request.query_params
    outcome = await provider_of(request).signin.begin_local(q.get("return_to"), q.get("prompt"), q.get("acr_values"),
                                                           get_cookie(request, SESSION_COOKIE))
    return await respond(request, outcome)


async def _finish(request: Request, response: Response, interaction: Interaction | None) -> Response:
    if interaction is not None:
        await provider_of(request).flow.interactions.delete(interaction.id)
        clear_cookie(request, response, INTERACTION_COOKIE)
    return response


def csrf_token(request: Request, interaction_id: str) -> str:
    return provider_of(request).sealer.mac("interaction", interaction_id)


async def render_step(request: Request, step: ShowStep) -> Response:
    p = provider_of(request)
    interaction, req, status = step.interaction, step.interaction.request, step.status
    client = None if interaction.local else await p.cached_clients.get(req.client_id)
    client_name = p.settings.branding.name if interaction.local else client_display_name(client, req.client_id)
    base = f"/interaction/{interaction.id}"
    ctx: dict[str, Any] = {"client_name": client_name, "csrf_token": csrf_token(request, interaction.id),
                           "abort_action": base + "/abort", "error": step.error}
    if step.step == "login":
        ctx.update(action=base + "/login", username=step.username, interaction_id=interaction.id)
        return page(request, "login.html", ctx, status=status)
    assert step.user is not None
    ctx["username"] = step.user.username
    if step.step == "second_factor":
        ctx.update(action=base + "/factor", factors=step.factors, interaction_id=interaction.id)
        return page(request, "second_factor.html", ctx, status=status)
    if step.step == "select_account":
        return page(request, "select_account.html", {**ctx, "action": base + "/select"}, status=status)
    if step.step == "select_patient":
        return await render_patient_picker(request, req, interaction.id, client_name, ctx["csrf_token"],
                                           step.user.id)
    ask = await p.flow.consent.ask(req, client, step.user)
    patient = await patient_in_context(p, req.context, step.user)  # EHR launch: whose records
    ctx.update(patient_name=patient, scopes=describe_scopes(ask.scopes, "this patient's" if patient else "your"))
    ctx.update(action=base + "/consent", claims=describe_claims(ask.claims),
               redirect_host=ask.redirect_host, unverified=not ask.verified)
    return page(request, "consent.html", ctx, status=status)


async def interaction_form(request: Request) -> tuple[Interaction, dict[str, str]]:
    """The interaction of this URL, if it belongs to this browser (double-submit cookie), and the
    CSRF-checked form of a POST; raises PageError (or InvalidRequest for a malformed form) otherwise."""
    p = provider_of(request)
    interaction_id = request.path_params["interaction_id"]
    cookie = get_cookie(request, INTERACTION_COOKIE) or ""
    interaction = await p.signin.load(interaction_id)
    if interaction is None or not hmac.compare_digest(cookie.encode(), interaction_id.encode()):
        raise PageError("invalid_request", "This sign-in request has expired or was started in another browser. "
                                           "Go back to the application and start again.")
    form: dict[str, str] = {}
    if request.method == "POST":
        form, _ = parse_form(await request.body(), request.headers.get("content-type"))
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), csrf_token(request, interaction_id).encode()):
            raise PageError("invalid_request", "The form has expired. Please try again.", 403)
    return interaction, form


@dataclass(frozen=True, slots=True)
class Browser:
    """What a step may need of the browser besides its form: the session cookie and the address."""

    cookie: str | None
    address: str


StepCall = Callable[[InteractionService, Interaction, dict[str, str], Browser], Awaitable[Outcome]]


def step_route(call: StepCall) -> Callable[[Request], Awaitable[Response]]:
    """A route of one interaction step: the interaction of this browser and its CSRF-checked form, ONE
    call of the sign-in service, the outcome rendered. Feature routes (passkeys, federation) use it too."""
    async def endpoint(request: Request) -> Response:
        interaction, form = await interaction_form(request)
        browser = Browser(get_cookie(request, SESSION_COOKIE), request.client.host if request.client else "unknown")
        return await respond(request, await call(provider_of(request).signin, interaction, form, browser))
    return endpoint


def _claims(form: Mapping[str, str]) -> list[str]:
    return [name[6:] for name, value in form.items() if name.startswith("claim.") and value == "yes"]


interaction_page = step_route(lambda s, i, _, b: s.resume(i, b.cookie))
login_submit = step_route(lambda s, i, f, b: s.password(
    i, f.get("username", "").strip(), f.get("password", ""), b.address, b.cookie))
factor_submit = step_route(lambda s, i, f, b: s.second_factor(i, f, b.cookie))
patient_submit = step_route(lambda s, i, f, b: s.pick_patient(i, f.get("patient", ""), b.cookie))
consent_submit = step_route(lambda s, i, f, b: s.consent(i, f.get("decision") == "approve", _claims(f), b.cookie))
select_submit = step_route(lambda s, i, f, b: s.choose_account(i, f.get("choice") == "continue", b.cookie))
abort_submit = step_route(lambda s, i, _, b: s.abort(i))


def page_routes() -> list[KindRoute]:
    return [
        page_route("/authorize", authorize, methods=["GET", "POST"]),
        page_route("/interaction/{interaction_id}", interaction_page, methods=["GET"]),
        page_route("/interaction/{interaction_id}/login", login_submit, methods=["POST"]),
        page_route("/interaction/{interaction_id}/factor", factor_submit, methods=["POST"]),
        page_route("/signin", local_signin, methods=["GET"]),
        page_route("/interaction/{interaction_id}/consent", consent_submit, methods=["POST"]),
        page_route("/interaction/{interaction_id}/patient", patient_submit, methods=["POST"]),
        page_route("/interaction/{interaction_id}/select", select_submit, methods=["POST"]),
        page_route("/interaction/{interaction_id}/abort", abort_submit, methods=["POST"]),
    ]
