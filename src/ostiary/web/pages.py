"""Browser-facing routes: /authorize, the login / consent / account-choice steps, and responses."""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import AccessDenied, OAuthError
from ..server.audit import audit
from ..server.authorize import (
    AuthorizationRequest,
    PageError,
    RedirectError,
    RedirectTarget,
    error_params,
    query_redirect,
    response_params,
)
from ..server.flow import AuthorizationResponse, NeedInteraction
from ..server.provider import Provider
from ..server.requests import parse_form, parse_form_noting_repeats
from ..store.identity import Session, User
from .render import (
    INTERACTION_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    describe_scopes,
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


def error_redirect(request: Request, err: RedirectError) -> Response:
    issuer = provider_of(request).settings.issuer
    return authorization_response(request, err.target, response_params(err.target, issuer, error_params(err.error)))


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
        return error_redirect(request, err)
    current = await p.flow.session(request.cookies.get(SESSION_COOKIE))
    return await proceed(request, req, current, state={})


async def proceed(request: Request, req: AuthorizationRequest, current: tuple[Session, User] | None, *,
                  state: Mapping[str, Any], interaction_id: str | None = None) -> Response:
    p = provider_of(request)
    try:
        outcome = await p.flow.decide(req, current, login_done=bool(state.get("login_done")),
                                      consent_done=bool(state.get("consent_done")))
    except PageError as err:
        return error_page(request, err)
    except RedirectError as err:
        outcome_response = error_redirect(request, err)
        return await _finish(request, outcome_response, interaction_id)
    if isinstance(outcome, AuthorizationResponse):
        return await _finish(request, authorization_response(request, outcome.target, outcome.params), interaction_id)
    assert isinstance(outcome, NeedInteraction)
    if interaction_id is None:
        interaction_id = await p.flow.start_interaction(req)
        response = RedirectResponse(f"/interaction/{interaction_id}", status_code=303)
        set_cookie(request, response, INTERACTION_COOKIE, interaction_id, p.settings.oidc.interaction_lifetime,
                   path="/interaction")
        return response
    return await render_step(request, outcome, interaction_id, current, state)


async def _finish(request: Request, response: Response, interaction_id: str | None) -> Response:
    if interaction_id is not None:
        await provider_of(request).flow.interactions.delete(interaction_id)
        clear_cookie(request, response, INTERACTION_COOKIE, path="/interaction")
    return response


def csrf_token(request: Request, interaction_id: str) -> str:
    return provider_of(request).sealer.mac("interaction", interaction_id)


async def render_step(request: Request, step: NeedInteraction, interaction_id: str,
                      current: tuple[Session, User] | None, state: Mapping[str, Any], *, error: str | None = None,
                      status: int = 200, username: str | None = None) -> Response:
    p = provider_of(request)
    client = await p.cached_clients.get(step.request.client_id)
    client_name = (client.client_name if client and client.client_name else step.request.client_id)
    base = f"/interaction/{interaction_id}"
    ctx: dict[str, Any] = {"client_name": client_name, "csrf_token": csrf_token(request, interaction_id)}
    kind = "login" if state.get("switch") and not state.get("login_done") else step.step
    if kind == "login":
        ctx.update(action=base + "/login", abort_action=base + "/abort", error=error,
                   username=username if username is not None else step.request.login_hint)
        return page(request, "login.html", ctx, status=status)
    assert current is not None
    ctx["username"] = current[1].username
    if kind == "select_account":
        return page(request, "select_account.html", {**ctx, "action": base + "/select"}, status=status)
    if kind == "select_patient":
        from .smart_routes import render_patient_picker

        return await render_patient_picker(request, step.request, interaction_id, client_name, ctx["csrf_token"])
    ctx.update(action=base + "/consent", scopes=describe_scopes(step.request.scope))
    return page(request, "consent.html", ctx, status=status)


async def _interaction(request: Request) -> tuple[str, AuthorizationRequest, dict[str, Any]] | Response:
    """The interaction of this URL, if it belongs to this browser (double-submit cookie)."""
    p = provider_of(request)
    interaction_id = request.path_params["interaction_id"]
    cookie = request.cookies.get(INTERACTION_COOKIE, "")
    data = await p.flow.interactions.get(interaction_id, int(time.time())) if len(interaction_id) <= 64 else None
    if data is None or not hmac.compare_digest(cookie.encode(), interaction_id.encode()):
        return error_page(request, PageError(
            "invalid_request", "This sign-in request has expired or was started in another browser. "
                               "Go back to the application and start again."))
    state = dict(data)
    req = AuthorizationRequest.from_dict(state.pop("request"))
    if request.method == "POST":
        form, _ = parse_form(await request.body(), request.headers.get("content-type"))
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), csrf_token(request, interaction_id).encode()):
            return error_page(request, PageError("invalid_request", "The form has expired. Please try again."), 403)
        state["_form"] = form
    return interaction_id, req, state


async def interaction_page(request: Request) -> Response:
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction_id, req, state = found
    current = await provider_of(request).flow.session(request.cookies.get(SESSION_COOKIE))
    return await proceed(request, req, current, state=state, interaction_id=interaction_id)


async def _save_state(request: Request, interaction_id: str, req: AuthorizationRequest, state: dict[str, Any]) -> None:
    clean = {k: v for k, v in state.items() if not k.startswith("_")}
    await provider_of(request).flow.interactions.update(interaction_id, {"request": req.to_dict(), **clean})


async def login_submit(request: Request) -> Response:
    p = provider_of(request)
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction_id, req, state = found
    form = state["_form"]
    username, password = form.get("username", "").strip(), form.get("password", "")
    address = request.client.host if request.client else "unknown"
    result = await p.user_service.login(username, password, address) if username and password else None
    if result is None or result.user is None:
        step = NeedInteraction("login", req)
        if result is not None and result.retry_after:
            msg = f"Too many sign-in attempts. Try again in {result.retry_after} seconds."
            return await render_step(request, step, interaction_id, None, state, error=msg, status=429,
                                     username=username)
        msg = "Enter your username and password." if result is None else "Wrong username or password."
        return await render_step(request, step, interaction_id, None, state, error=msg, status=400,
                                 username=username)
    cookie, _ = await p.flow.log_in(result.user, request.cookies.get(SESSION_COOKIE))
    state.update(login_done=True, switch=False)
    await _save_state(request, interaction_id, req, state)
    response = RedirectResponse(f"/interaction/{interaction_id}", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, cookie, p.settings.oidc.session_lifetime)
    return response


async def consent_submit(request: Request) -> Response:
    p = provider_of(request)
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction_id, req, state = found
    current = await p.flow.session(request.cookies.get(SESSION_COOKIE))
    if current is None:
        return RedirectResponse(f"/interaction/{interaction_id}", status_code=303)
    if state["_form"].get("decision") != "approve":
        audit("consent_denied", sub=current[1].id, client_id=req.client_id, scope=" ".join(req.scope))
        err = RedirectError(AccessDenied("the user denied the request"), req.target)
        return await _finish(request, error_redirect(request, err), interaction_id)
    await p.consents.grant(current[1].id, req.client_id, frozenset(req.scope))
    audit("consent_granted", sub=current[1].id, client_id=req.client_id, scope=" ".join(req.scope))
    state["consent_done"] = True
    await _save_state(request, interaction_id, req, state)
    return RedirectResponse(f"/interaction/{interaction_id}", status_code=303)


async def select_submit(request: Request) -> Response:
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction_id, req, state = found
    if state["_form"].get("choice") == "continue":
        state["login_done"] = True
    else:
        state["switch"] = True
    await _save_state(request, interaction_id, req, state)
    return RedirectResponse(f"/interaction/{interaction_id}", status_code=303)


async def abort_submit(request: Request) -> Response:
    found = await _interaction(request)
    if isinstance(found, Response):
        return found
    interaction_id, req, _ = found
    err = RedirectError(AccessDenied("the user cancelled the sign-in"), req.target)
    return await _finish(request, error_redirect(request, err), interaction_id)


def page_routes() -> list[Route]:
    return [
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/interaction/{interaction_id}", interaction_page, methods=["GET"]),
        Route("/interaction/{interaction_id}/login", login_submit, methods=["POST"]),
        Route("/interaction/{interaction_id}/consent", consent_submit, methods=["POST"]),
        Route("/interaction/{interaction_id}/select", select_submit, methods=["POST"]),
        Route("/interaction/{interaction_id}/abort", abort_submit, methods=["POST"]),
    ]
