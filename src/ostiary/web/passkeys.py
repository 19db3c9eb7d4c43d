"""Passkey pages: the account section (register, rename, remove) and passwordless sign-in.

Routes (each parses its form, checks CSRF, makes one service call and renders):

- `POST /account/passkeys/options`: creation options (JSON) for the signed-in user;
- `POST /account/passkeys/register`: the browser's response (field `credential`) and a `name`;
- `POST /account/passkeys/name`, `POST /account/passkeys/remove`: one of the user's own credentials;
- `POST /interaction/{id}/passkey/options`: request options for this interaction (passwordless);
- `POST /interaction/{id}/passkey`: the assertion; its proof goes to `provider.signin.prove`.

Adding and removing need a credential verified within `RECENT_CREDENTIAL` seconds (web/account_forms.py).
All of these answer 404 when passkeys are off (an IP-literal issuer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..app.provider import Provider
from ..server.passkeys import PasskeyError, PasskeyService
from ..server.signin.outcomes import ShowStep
from ..store.identity import Session, User
from ..store.passkeys import PasskeyCredential
from .account_forms import (
    REAUTHENTICATE,
    Section,
    account_change,
    account_csrf,
    account_form,
    credential_is_recent,
    provider_of,
)
from .kinds import KindRoute, api_route, page_route
from .pages import interaction_form, respond
from .render import SESSION_COOKIE, get_cookie, page

__all__ = ["passkey_routes", "passkeys_section"]

_NOT_SENT = ("Your browser did not send a passkey. Passkeys need JavaScript and a browser that supports them; "
             "you can also sign in another way.")


def _day(timestamp: int | None) -> str:
    return "" if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%d %b %Y")


def _shown(c: PasskeyCredential) -> dict[str, str]:
    kind = "Synced passkey" if c.backup_eligible else "Only on this device or key"
    return {"id": c.credential_id, "name": c.name, "kind": kind, "created": _day(c.created_at),
            "last_used": _day(c.last_used_at)}


async def passkeys_section(request: Request, provider: Provider, session: Session, user: User) -> Section | None:
    """The account page's passkey list and add form (nothing when passkeys are off)."""
    if provider.passkeys is None:
        return None
    credentials = await provider.passkeys.credentials.list_for_user(user.id)
    return Section("account_passkeys.html", {
        "credentials": [_shown(c) for c in credentials], "csrf_token": account_csrf(provider, session),
        "recent": credential_is_recent(session)})


Handler = Callable[[Request, PasskeyService], Awaitable[Response]]


def _needs_passkeys(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The route's endpoint: 404 while passkeys are off, else `handler` with the service."""
    async def endpoint(request: Request) -> Response:
        service = provider_of(request).passkeys
        if service is None:
            return JSONResponse({"error": "not_found", "error_description": "passkeys are off"}, status_code=404)
        return await handler(request, service)
    return endpoint


def _message(request: Request, heading: str, text: str, status: int) -> Response:
    return page(request, "message.html", {"heading": heading, "text": text,
                                          "link": {"href": "/account", "text": "Back to your account"}},
                status=status)


async def registration_options(request: Request, service: PasskeyService) -> Response:
    answered = await account_form(request)
    if isinstance(answered, Response):
        return JSONResponse({"error": "invalid_request", "error_description": "The form has expired."},
                            status_code=403)
    session, user, _ = answered
    if not credential_is_recent(session):  # the script goes through the sign-in first
        return JSONResponse({"error": "login_required", "location": REAUTHENTICATE}, status_code=403)
    try:
        return JSONResponse(await service.registration_options(user, session))
    except PasskeyError as exc:
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, status_code=400)


async def register(request: Request, service: PasskeyService) -> Response:
    answered = await account_change(request)
    if isinstance(answered, Response):
        return answered
    session, user, form = answered
    if not form.get("credential"):
        return _message(request, "No passkey was added", _NOT_SENT, 400)
    try:
        await service.register(user, session, form["credential"], form.get("name", ""))
    except PasskeyError as exc:
        return _message(request, "No passkey was added", str(exc), 400)
    return RedirectResponse("/account", status_code=303)


async def rename(request: Request, service: PasskeyService) -> Response:
    answered = await account_form(request)  # a name is not a credential: no recent sign-in needed
    if isinstance(answered, Response):
        return answered
    _, user, form = answered
    await service.rename(user.id, form.get("credential_id", ""), form.get("name", ""))
    return RedirectResponse("/account", status_code=303)


async def remove(request: Request, service: PasskeyService) -> Response:
    answered = await account_change(request)
    if isinstance(answered, Response):
        return answered
    _, user, form = answered
    await service.remove(user.id, form.get("credential_id", ""))
    return RedirectResponse("/account", status_code=303)


async def signin_options(request: Request, service: PasskeyService) -> Response:
    interaction, _ = await interaction_form(request)  # PageError: answered as JSON (an api route)
    return JSONResponse(await service.authentication_options(interaction.id, None))


async def signin(request: Request, service: PasskeyService) -> Response:
    interaction, form = await interaction_form(request)
    try:
        proof = await service.authenticate(interaction.id, None, form.get("credential", ""))
    except PasskeyError as exc:
        error = str(exc) if form.get("credential") else _NOT_SENT
        return await respond(request, ShowStep("login", interaction, error=error, status=400))
    p = provider_of(request)
    return await respond(request, await p.signin.prove(interaction, proof, get_cookie(request, SESSION_COOKIE)))


def passkey_routes() -> list[KindRoute]:
    return [
        api_route("/account/passkeys/options", _needs_passkeys(registration_options), methods=["POST"]),
        page_route("/account/passkeys/register", _needs_passkeys(register), methods=["POST"]),
        page_route("/account/passkeys/name", _needs_passkeys(rename), methods=["POST"]),
        page_route("/account/passkeys/remove", _needs_passkeys(remove), methods=["POST"]),
        api_route("/interaction/{interaction_id}/passkey/options", _needs_passkeys(signin_options), methods=["POST"]),
        page_route("/interaction/{interaction_id}/passkey", _needs_passkeys(signin), methods=["POST"]),
    ]
