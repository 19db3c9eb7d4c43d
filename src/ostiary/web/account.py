"""The account page: applications the user allowed, then one section per sign-in feature.

Each section (second factors, passkeys, linked identities, email) is a function in `SECTIONS` that
returns its template and context for the signed-in user, or None to show nothing; its forms post to
its own routes and check `account_csrf`. Only the session's user is ever shown or changed.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.provider import Provider
from ..errors import PageError
from ..server.consent import client_display_name
from ..server.requests import parse_form
from ..store.identity import Session, User
from .kinds import KindRoute, page_route
from .render import SESSION_COOKIE, describe_consent, get_cookie, page

__all__ = ["SECTIONS", "AccountSection", "Section", "account_csrf", "account_form", "account_routes",
           "signed_in"]


@dataclass(frozen=True, slots=True)
class Section:
    template: str  # a partial in templates/, included in account.html
    context: Mapping[str, Any] = field(default_factory=dict)


SIGN_IN = "/signin?return_to=/account"  # the local sign-in (same steps, second factor included)
AccountSection = Callable[[Request, Provider, Session, User], Awaitable[Section | None]]

SECTIONS: tuple[AccountSection, ...] = ()


def provider_of(request: Request) -> Provider:
    provider: Provider = request.app.state.provider
    return provider


def account_csrf(provider: Provider, session: Session) -> str:
    """The CSRF value of every form on the account page (bound to the session)."""
    return provider.sealer.mac("account", session.digest)


async def signed_in(request: Request) -> tuple[Session, User] | Response:
    """The session and user of this browser, or the page saying to sign in."""
    current = await provider_of(request).flow.session(get_cookie(request, SESSION_COOKIE))
    if current is None:
        return page(request, "message.html", {"heading": "You are not signed in",
                                              "text": "Sign in to see your account.",
                                              "link": {"href": SIGN_IN, "text": "Sign in"}})
    return current


async def account_form(request: Request) -> tuple[Session, User, dict[str, str]] | Response:
    """The signed-in user and the CSRF-checked form of a POST from the account page."""
    current = await signed_in(request)
    if isinstance(current, Response):
        return current
    session, user = current
    form, _ = parse_form(await request.body(), request.headers.get("content-type"))
    expected = account_csrf(provider_of(request), session)
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), expected.encode()):
        raise PageError("invalid_request", "The form has expired.", 403)
    return session, user, form


async def account(request: Request) -> Response:
    p = provider_of(request)
    if request.method == "POST":
        answered = await account_form(request)
        if isinstance(answered, Response):
            return answered
        _, user, form = answered
        client_id = form.get("client_id", "")
        await p.consents.revoke(user.id, client_id)
        await p.revoke_user_grants(user.id, client_id)
        return RedirectResponse("/account", status_code=303)
    current = await signed_in(request)
    if isinstance(current, Response):
        return current
    session, user = current
    items = []
    for client_id, scopes in sorted((await p.consents.list_for_user(user.id)).items()):
        client = await p.cached_clients.get(client_id)
        described = describe_consent(scopes)  # the words the consent page used
        items.append({"client_id": client_id, "client_name": client_display_name(client, client_id),
                      "scope": "; ".join(d["text"] for d in described)})
    sections = [s for s in [await section(request, p, session, user) for section in SECTIONS] if s is not None]
    return page(request, "account.html", {"username": user.username, "consents": items,
                                          "csrf_token": account_csrf(p, session), "sections": sections,
                                          "action": "/account", "logout_action": "/logout"})


def account_routes() -> list[KindRoute]:
    return [page_route("/account", account, methods=["GET", "POST"])]
