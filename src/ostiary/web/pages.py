"""Browser-facing routes: /authorize, the login / consent / account-choice steps, and responses."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..app.provider import Provider
from ..errors import OAuthError
from ..server.authorize import (
    AuthorizationRequest,
    PageError,
    RedirectError,
    RedirectTarget,
    query_redirect,
)
from ..server.consent import client_display_name
from ..server.flow import AuthorizationResponse, NeedInteraction
from ..server.interaction import Interaction, Step
from ..server.requests import parse_form, parse_form_noting_repeats
from ..store.identity import Session, User
from .patient_context import patient_in_context
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

__all__ = ["page_routes"]


def provider_of(request: Request) -> Provider:
    provider: Provider = request.app.state.provider
    return provider


async def request_params(request: Request) -> tuple[dict[str, str], set[str]]:
    """Parameters of a GET (query) or POST (form) request, and the names given more than once."""
    if request.method == "POST":
        try:
            return parse_form_noting_repeats(await request.body(), request.headers.get("content-type"))
        except OAuthError as exc:
            raise PageError("invalid_request", exc.description or "malformed request") from None
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


def error_page(request: Request, err: PageError, status: int = 400) -> Response:
    return page(request, "error.html", {"error": err.error, "description": err.description}, status=status)


async def authorize(request: Request) -> Response:
    p = provider_of(request)
    try:
        params, repeated = await request_params(request)
        req = await p.flow.validate(params, repeated)
    except PageError as err:
        return error_page(request, err)
    except RedirectError as err:
        current = await p.flow.session(get_cookie(request, SESSION_COOKIE))
        return await deliver(request, await p.flow.refuse(err, current[1] if current else None, None,
                                                          params.get("client_id")))
    current = await p.flow.session(get_cookie(request, SESSION_COOKIE))
    return await proceed(request, req, current)


async def proceed(request: Request, req: AuthorizationRequest, current: tuple[Session, User] | None,
                  interaction: Interaction | None = None) -> Response:
    p = provider_of(request)
    try:
        outcome = await p.flow.decide(req, current, interaction)
    except PageError as err:
        return error_page(request, err)
    except RedirectError as err:
        refused = await p.flow.refuse(err, current[1] if current else None, interaction, req.client_id)
        return await deliver(request, refused, interaction)
    if isinstance(outcome, AuthorizationResponse):
        return await deliver(request, outcome, interaction)
    if interaction is None:
        interaction = await p.flow.start_interaction(req)
        response = RedirectResponse(f"/interaction/{interaction.id}", status_code=303)
        set_cookie(request, response, INTERACTION_COOKIE, interaction.id, p.settings.oidc.interaction_lifetime)
        return response
    return await render_step(request, outcome, interaction.id, current)


async def _finish(request: Request, response: Response, interaction: Interaction | None) -> Response:
    if interaction is not None:
        await provider_of(request).flow.interactions.delete(interaction.id)
        clear_cookie(request, response, INTERACTION_COOKIE)
    return response


def csrf_token(request: Request, interaction_id: str) -> str:
    return provider_of(request).sealer.mac("interaction", interaction_id)


async def render_step(request: Request, step: NeedInteraction, interaction_id: str,
                      current: tuple[Session, User] | None, *, error: str | None = None,
                      status: int = 200, username: str | None = None) -> Response:
    p = provider_of(request)
    client = await p.cached_clients.get(step.request.client_id)
    client_name = client_display_name(client, step.request.client_id)
    base = f"/interaction/{interaction_id}"
    ctx: dict[str, Any] = {"client_name": client_name, "csrf_token": csrf_token(request, interaction_id)}
    if step.step == "login":
        ctx.update(action=base + "/login", abort_action=base + "/abort", error=error,
                   username=username if username is not None else step.request.login_hint)
        return page(request, "login.html", ctx, status=status)
    assert current is not None
    ctx["username"] = current[1].username
    if step.step == "select_account":
        return page(request, "select_account.html", {**ctx, "action": base + "/select"}, status=status)
    if step.step == "select_patient":
        from .smart_routes import render_patient_picker

        return await render_patient_picker(request, step.request, interaction_id, client_name, ctx["csrf_token"],
                                           current[1].id)
    ask = await p.flow.consent.ask(step.request, client, current[1])
    patient = await patient_in_context(p, step.request.context, current[1])  # EHR launch: whose records
    ctx.update(patient_name=patient, scopes=describe_scopes(ask.scopes, "this patient's" if patient else "your"))
    ctx.update(action=base + "/consent", claims=describe_claims(ask.claims),
               redirect_host=ask.redirect_host, unverified=not ask.verified)
    return page(request, "consent.html", ctx, status=status)


async def _interaction(request: Request) -> tuple[Interaction, dict[str, str]] | Response:
    """The interaction of this URL, if it belongs to this browser (double-submit cookie), and the
    CSRF-checked form of a POST."""
    p = provider_of(request)
    interaction_id = request.path_params["interaction_id"]
    cookie = get_cookie(request, INTERACTION_COOKIE) or ""
    interaction = await p.flow.interaction(interaction_id)
    if interaction is None or not hmac.compare_digest(cookie.encode(), interaction_id.encode()):
        return error_page(request, PageError(
            "invalid_request", "This sign-in request has expired or was started in another browser. "
                               "Go back to the application and start again."))
    form: dict[str, str] = {}
    if request.method == "POST":
        form, _ = parse_form(await request.body(), request.headers.get("content-type"))
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), csrf_token(request, interaction_id).encode()):
            return error_page(request, PageError("invalid_request", "The form has expired. Please try again."), 403)
    return interaction, form


def _back_to(interaction: Interaction) -> Response:
    return RedirectResponse(f"/interaction/{interaction.id}", status_code=303)


async def _answering(request: Request, step: Step) -> tuple[Interaction, dict[str, str]] | Response:
    """The interaction and form of a POST that answers `step`; any other moment shows the current step."""
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction, _ = found
    p = provider_of(request)
    if await p.flow.pending(interaction, await p.flow.session(get_cookie(request, SESSION_COOKIE))) != step:
        return _back_to(interaction)
    return found


async def interaction_page(request: Request) -> Response:
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction, _ = found
    current = await provider_of(request).flow.session(get_cookie(request, SESSION_COOKIE))
    return await proceed(request, interaction.request, current, interaction)


async def login_submit(request: Request) -> Response:
    p = provider_of(request)
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction, form = found
    username, password = form.get("username", "").strip(), form.get("password", "")
    address = request.client.host if request.client else "unknown"
    result = await p.user_service.login(username, password, address) if username and password else None
    if result is None or result.user is None:
        step = NeedInteraction("login", interaction.request)
        if result is not None and result.retry_after:
            msg = f"Too many sign-in attempts. Try again in {result.retry_after} seconds."
            throttled = await render_step(request, step, interaction.id, None, error=msg, status=429,
                                          username=username)
            throttled.headers["Retry-After"] = str(result.retry_after)  # RFC 9110 §10.2.3
            return throttled
        msg = "Enter your username and password." if result is None else "Wrong username or password."
        return await render_step(request, step, interaction.id, None, error=msg, status=400, username=username)
    cookie, interaction = await p.flow.authenticate(interaction, result.user, get_cookie(request, SESSION_COOKIE))
    response = _back_to(interaction)
    set_cookie(request, response, SESSION_COOKIE, cookie, p.settings.oidc.session_lifetime)
    return response


async def consent_submit(request: Request) -> Response:
    p = provider_of(request)
    found = await _answering(request, "consent")
    if isinstance(found, Response):
        return found
    interaction, form = found
    current = await p.flow.session(get_cookie(request, SESSION_COOKIE))
    if current is None:  # signed out in another tab since: show what is due now
        return _back_to(interaction)
    claims = [name[6:] for name, value in form.items() if name.startswith("claim.") and value == "yes"]
    answered = await p.flow.give_consent(interaction, current[1], form.get("decision") == "approve", claims)
    if isinstance(answered, Interaction):
        return _back_to(answered)
    return await deliver(request, answered, interaction)


async def select_submit(request: Request) -> Response:
    found = await _answering(request, "select_account")
    if isinstance(found, Response):
        return found
    interaction, form = found
    await provider_of(request).flow.choose_account(interaction, form.get("choice") == "continue")
    return _back_to(interaction)


async def abort_submit(request: Request) -> Response:
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction, _ = found
    return await deliver(request, await provider_of(request).flow.cancel(interaction), interaction)


def page_routes() -> list[Route]:
    return [
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/interaction/{interaction_id}", interaction_page, methods=["GET"]),
        Route("/interaction/{interaction_id}/login", login_submit, methods=["POST"]),
        Route("/interaction/{interaction_id}/consent", consent_submit, methods=["POST"]),
        Route("/interaction/{interaction_id}/select", select_submit, methods=["POST"]),
        Route("/interaction/{interaction_id}/abort", abort_submit, methods=["POST"]),
    ]
