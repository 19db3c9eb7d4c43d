"""Federation routes: "Sign in with ..." (start), the upstream callback, and the first-sign-in choice.

    POST /federation/{provider}/start     from the login page: the interaction is this browser's
    GET  /federation/{provider}/callback  the upstream's redirect: state, code, iss
    GET|POST /federation/link             an unknown upstream identity: new account, or link after signing in
    POST /federation/link/confirm         link it to the account just signed in to

What the browser carries between start and callback (state, nonce, PKCE verifier, interaction) and
an unknown identity waiting for the person's choice are kept in sealed, HttpOnly cookies: bound to
this browser, readable only by this server, and each used once.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.provider import Provider
from ..config import FederationProvider
from ..errors import PageError
from ..server.audit import audit
from ..server.federation.accounts import federated_proof
from ..server.federation.login import FederationFailed, FederationLogin, PendingLogin, UpstreamIdentity
from ..server.interaction import Interaction
from ..server.requests import parse_form
from ..server.signin.outcomes import Redirect
from ..store.federation import LinkExists
from ..store.identity import User
from .context import provider_of
from .errors import error_page
from .kinds import KindRoute, page_route
from .pages import csrf_token, respond
from .render import INTERACTION_COOKIE, SESSION_COOKIE, clear_cookie, get_cookie, page, set_cookie

__all__ = ["federation_routes"]

FLOW_COOKIE = "ostiary_federation"
LINK_COOKIE = "ostiary_federation_link"
FRESH_SIGN_IN = 300  # seconds: linking needs a sign-in to the existing account this recent


def _failed(request: Request, label: str, status: int = 400) -> Response:
    return error_page(request, PageError("access_denied", f"Signing in with {label} did not work. Go back to "
                                                          "the application and try again.", status))


def _sealed(p: Provider, data: Mapping[str, Any]) -> str:
    return p.sealer.seal(orjson.dumps(dict(data)).decode())


def _unsealed(p: Provider, value: str | None) -> dict[str, Any] | None:
    if not value or len(value) > 8192:
        return None
    opened = p.sealer.unseal(value)
    try:
        data = orjson.loads(opened) if opened else None
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _named_upstream(p: Provider, request: Request) -> tuple[FederationLogin, str]:
    """The federation sign-in and the configured upstream the URL names; 404 for any other name."""
    name = request.path_params["provider"]
    if p.federation_login is None or name not in p.federation_login.upstreams:
        raise PageError("invalid_request", "There is no such identity provider.", 404)
    return p.federation_login, name


async def _this_interaction(request: Request, interaction_id: str) -> Interaction | None:
    """The interaction, if it is this browser's (its interaction cookie) and still pending."""
    cookie = get_cookie(request, INTERACTION_COOKIE) or ""
    if not interaction_id or not hmac.compare_digest(cookie.encode(), interaction_id.encode()):
        return None
    return await provider_of(request).flow.interaction(interaction_id)


async def start(request: Request) -> Response:
    p = provider_of(request)
    login, name = _named_upstream(p, request)
    form, _ = parse_form(await request.body(), request.headers.get("content-type"))
    interaction_id = get_cookie(request, INTERACTION_COOKIE) or ""
    interaction = await _this_interaction(request, interaction_id)
    if interaction is None or not hmac.compare_digest(form.get("csrf_token", "").encode(),
                                                      csrf_token(request, interaction_id).encode()):
        raise PageError("invalid_request", "This sign-in request has expired or was started in another browser. "
                                           "Go back to the application and start again.", 403)
    req = interaction.request
    try:  # OIDC Core §3.1.2.1: a re-authentication asked of us is asked of the upstream too
        url, pending = await login.begin(name, interaction.id, login="login" in req.prompt or interaction.switching,
                                         max_age=req.max_age, now=int(time.time()))
    except FederationFailed as exc:
        audit("federation_failed", provider=name, client_id=req.client_id, reason=exc.reason)
        return _failed(request, login.upstreams[name].label, 502)
    response = RedirectResponse(url, status_code=303)
    set_cookie(request, response, FLOW_COOKIE, _sealed(p, pending.to_dict()), p.settings.oidc.interaction_lifetime)
    return response


async def callback(request: Request) -> Response:
    p = provider_of(request)
    login, name = _named_upstream(p, request)
    label = login.upstreams[name].label
    data = _unsealed(p, get_cookie(request, FLOW_COOKIE))
    pending = PendingLogin.from_dict(data) if data else None
    params = dict(request.query_params.items())
    repeated = len(params) != len(request.query_params.multi_items())  # RFC 6749 §3.1: refused
    interaction = await _this_interaction(request, pending.interaction_id) if pending else None
    if pending is None or interaction is None:
        audit("federation_failed", provider=name, reason="no sign-in of this browser waits for this answer")
        response = _failed(request, label)
    else:
        try:
            identity = await login.finish(pending, name, params, int(time.time()), repeated=repeated)
        except FederationFailed as exc:
            audit("federation_failed", provider=name, client_id=interaction.request.client_id, reason=exc.reason)
            response = _failed(request, label)
        else:
            response = await _signed_in_upstream(request, interaction, identity)
    clear_cookie(request, response, FLOW_COOKIE)  # single-use, whatever happened
    return response


async def _signed_in_upstream(request: Request, interaction: Interaction, identity: UpstreamIdentity) -> Response:
    p = provider_of(request)
    now = int(time.time())
    user = await p.federated_accounts.linked_user(identity, now)
    if user is not None:
        audit("federation_signed_in", sub=user.id, provider=identity.provider, client_id=interaction.request.client_id)
        return await _prove(request, interaction, identity, user.id)
    if await p.federated_accounts.is_linked(identity):  # linked to a disabled or deleted user
        audit("federation_failed", provider=identity.provider, reason="linked user is disabled")
        return _failed(request, _label(p, identity.provider), 403)
    before = await p.flow.session(get_cookie(request, SESSION_COOKIE))  # a session already here does not count
    pending = {"identity": _identity_dict(identity), "interaction_id": interaction.id, "at": now,
               "sid_before": before[0].sid if before else None}
    response = RedirectResponse("/federation/link", status_code=303)
    set_cookie(request, response, LINK_COOKIE, _sealed(p, pending), p.settings.oidc.interaction_lifetime)
    return response


def _config(p: Provider, provider: str) -> FederationProvider:
    """The settings of a configured upstream (callers have checked that it is one)."""
    assert p.federation_login is not None
    return p.federation_login.upstreams[provider].config


async def _prove(request: Request, interaction: Interaction, identity: UpstreamIdentity, user_id: str) -> Response:
    p = provider_of(request)
    proof = federated_proof(identity, user_id, _config(p, identity.provider), int(time.time()))
    outcome = await p.signin.prove(interaction, proof, get_cookie(request, SESSION_COOKIE))
    response = await respond(request, outcome)
    if isinstance(outcome, Redirect):  # back to this interaction (a local sign-in in between had its own)
        set_cookie(request, response, INTERACTION_COOKIE, interaction.id, p.settings.oidc.interaction_lifetime)
    return response


def _label(p: Provider, provider: str) -> str:
    upstreams = p.federation_login.upstreams if p.federation_login else {}
    return upstreams[provider].label if provider in upstreams else provider


def _identity_dict(identity: UpstreamIdentity) -> dict[str, Any]:
    return {"provider": identity.provider, "subject": identity.subject, "profile": dict(identity.profile),
            "auth_time": identity.auth_time, "acr": identity.acr, "amr": list(identity.amr)}


def _identity_of(data: Mapping[str, Any]) -> UpstreamIdentity | None:
    try:
        raw = data["identity"]
        return UpstreamIdentity(provider=str(raw["provider"]), subject=str(raw["subject"]),
                                profile={str(k): str(v) for k, v in dict(raw["profile"]).items()},
                                auth_time=raw["auth_time"] if isinstance(raw["auth_time"], int) else None,
                                acr=raw["acr"] if isinstance(raw["acr"], str) else None,
                                amr=tuple(str(v) for v in raw["amr"]))
    except (KeyError, TypeError, ValueError):
        return None


def _link_csrf(p: Provider, pending: Mapping[str, Any]) -> str:
    return p.sealer.mac("federation-link", f"{pending.get('interaction_id')}:{pending.get('at')}")


async def _pending_link(request: Request) -> tuple[dict[str, Any], UpstreamIdentity, Interaction]:
    p = provider_of(request)
    pending = _unsealed(p, get_cookie(request, LINK_COOKIE))
    identity = _identity_of(pending) if pending else None
    if pending is None or identity is None or not isinstance(pending.get("at"), int) or \
            int(time.time()) - pending["at"] > p.settings.oidc.interaction_lifetime:
        raise PageError("invalid_request", "This sign-in has expired. Go back to the application and start again.")
    # Bound to this browser by the sealed cookie itself: the sign-in to an existing account in between
    # (/signin) runs an interaction of its own, so the interaction cookie may name that one by now.
    interaction = await p.flow.interaction(str(pending.get("interaction_id", "")))
    if interaction is None or p.federation_login is None or identity.provider not in p.federation_login.upstreams:
        raise PageError("invalid_request", "This sign-in has expired. Go back to the application and start again.")
    if request.method == "POST":
        form, _ = parse_form(await request.body(), request.headers.get("content-type"))
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), _link_csrf(p, pending).encode()):
            raise PageError("invalid_request", "The form has expired. Please try again.", 403)
        request.state.form = form
    return pending, identity, interaction


async def link_page(request: Request) -> Response:
    """The choice after a first upstream sign-in (GET), and its answer (POST)."""
    p = provider_of(request)
    pending, identity, interaction = await _pending_link(request)
    config = _config(p, identity.provider)
    choice = request.state.form.get("choice") if request.method == "POST" else None
    if choice == "create" and config.provision:
        try:
            created: User | None = await p.federated_accounts.provision(identity, int(time.time()))
        except LinkExists:  # a racing first sign-in (another tab) linked it: sign in through that link
            created = await p.federated_accounts.linked_user(identity, int(time.time()))
        if created is None:
            return _failed(request, config.label or config.id, 403)
        response = await _prove(request, interaction, identity, created.id)
        clear_cookie(request, response, LINK_COOKIE)
        return response
    if choice == "link":  # sign in to the existing account first: password and its second factor
        return RedirectResponse("/signin?return_to=/federation/link/confirm&prompt=login", status_code=303)
    return page(request, "federation_choice.html", {
        "provider": config.label or config.id, "identity": identity.label, "provision": config.provision,
        "csrf_token": _link_csrf(p, pending), "action": "/federation/link"})


async def confirm_page(request: Request) -> Response:
    """After signing in to an existing account: link the upstream identity to it, if the person confirms."""
    p = provider_of(request)
    pending, identity, interaction = await _pending_link(request)
    current = await p.flow.session(get_cookie(request, SESSION_COOKIE))
    # The account must have been signed in to after the upstream sign-in, and recently: a session that
    # was already there (someone else's, on a shared computer) does not count.
    if current is None or current[0].sid == pending.get("sid_before") or current[0].auth_time < pending["at"] \
            or time.time() - current[0].auth_time > FRESH_SIGN_IN:
        return RedirectResponse("/federation/link", status_code=303)
    _, user = current
    label = _label(p, identity.provider)
    if request.method == "GET":
        return page(request, "federation_confirm.html", {
            "provider": label, "identity": identity.label, "username": user.username,
            "csrf_token": _link_csrf(p, pending), "action": "/federation/link/confirm"})
    if request.state.form.get("decision") != "link":
        audit("federation_link_declined", sub=user.id, provider=identity.provider)
        response: Response = RedirectResponse(f"/interaction/{interaction.id}", status_code=303)
    else:
        try:
            await p.federated_accounts.link(identity, user, int(time.time()))
        except LinkExists:
            audit("federation_failed", sub=user.id, provider=identity.provider, reason="identity already linked")
            raise PageError("invalid_request", f"This {label} account is already linked to an account here.",
                            409) from None
        response = await _prove(request, interaction, identity, user.id)
    clear_cookie(request, response, LINK_COOKIE)
    return response


def federation_routes() -> list[KindRoute]:
    return [
        page_route("/federation/{provider}/start", start, methods=["POST"]),
        page_route("/federation/{provider}/callback", callback, methods=["GET"]),
        page_route("/federation/link", link_page, methods=["GET", "POST"]),
        page_route("/federation/link/confirm", confirm_page, methods=["GET", "POST"]),
    ]
