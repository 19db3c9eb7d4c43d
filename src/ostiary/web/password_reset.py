"""Password reset pages: "Forgot your password?" (/password/forgot) and the mailed link (/password/reset).

Each route parses the form, checks the CSRF value (a MAC of a nonce cookie set with the form), makes
one call to server.email.reset and renders. The answer to a request is the same page whatever was typed.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from ..errors import PageError
from ..server.email.reset import RESET_PATH, PasswordReset
from ..server.requests import parse_form
from .account_forms import SIGN_IN
from .context import provider_of
from .kinds import KindRoute, page_route
from .render import get_cookie, page, set_cookie

__all__ = ["FORGOT_PATH", "check_form", "password_reset_routes", "show_form"]

FORGOT_PATH = "/password/forgot"
_COOKIE = "ostiary_reset"
_NOT_OFFERED = {"heading": "Password reset is not available",
                "text": "This server sends no mail. Ask your administrator to set a new password."}


def show_form(request: Request, template: str, context: dict[str, object], *, purpose: str, cookie: str,
              status: int = 200) -> Response:
    """A form page whose CSRF value is a MAC of a random nonce cookie set with it (for people not signed in)."""
    p = provider_of(request)
    nonce = get_cookie(request, cookie) or secrets.token_urlsafe(16)
    response = page(request, template, {**context, "csrf_token": p.sealer.mac(purpose, nonce)}, status=status)
    set_cookie(request, response, cookie, nonce, 900)
    return response


async def check_form(request: Request, *, purpose: str, cookie: str) -> dict[str, str]:
    """The posted form if its CSRF value matches the cookie; raises PageError (InvalidRequest when malformed)."""
    form, _ = parse_form(await request.body(), request.headers.get("content-type"))
    p = provider_of(request)
    nonce = get_cookie(request, cookie) or ""
    if not nonce or not hmac.compare_digest(form.get("csrf_token", "").encode(),
                                            p.sealer.mac(purpose, nonce).encode()):
        raise PageError("invalid_request", "The form has expired. Go back, reload the page and try again.", 403)
    return form


def _reset(request: Request) -> PasswordReset | None:
    mail = provider_of(request).mail
    return mail.reset if mail is not None else None


async def forgot(request: Request) -> Response:
    reset = _reset(request)
    if reset is None:
        return page(request, "message.html", _NOT_OFFERED, status=404)
    if request.method == "GET":
        return show_form(request, "password_forgot.html", {"action": FORGOT_PATH}, purpose="reset-ask",
                         cookie=_COOKIE)
    form = await check_form(request, purpose="reset-ask", cookie=_COOKIE)
    address = request.client.host if request.client else "unknown"
    wait = await reset.request(form.get("identifier", ""), address)
    if wait:  # per client address: the same for every name typed
        return _too_many(request, wait)
    minutes = reset.lifetime // 60
    return page(request, "message.html", {
        "heading": "Check your mail",
        "text": ("If an account matches what you entered and has a verified email address, we have sent a link "
                 f"to that address. It works once, for {minutes} minutes. Nothing arrived? Check the spam "
                 "folder, or ask your administrator.")})


def _too_many(request: Request, wait: int) -> Response:
    response = page(request, "message.html", {"heading": "Too many requests", "text": f"Try again in {wait} seconds."},
                    status=429)
    response.headers["Retry-After"] = str(wait)
    return response


_INVALID = {"heading": "This link cannot be used",
            "text": "It was already used, has expired, or was replaced by a newer one. Ask for a new link."}


async def reset_password(request: Request) -> Response:
    reset = _reset(request)
    if reset is None:
        return page(request, "message.html", _NOT_OFFERED, status=404)
    if request.method == "GET":
        token = request.query_params.get("token", "")
        if not await reset.usable(token):
            return page(request, "message.html", _INVALID, status=400)
        return show_form(request, "password_reset.html", {"action": RESET_PATH, "token": token},
                         purpose="reset-set", cookie=_COOKIE)
    form = await check_form(request, purpose="reset-set", cookie=_COOKIE)
    token, password = form.get("token", ""), form.get("password", "")
    if password != form.get("password_confirm", ""):
        return show_form(request, "password_reset.html", {"action": RESET_PATH, "token": token,
                                                          "error": "The two passwords differ."},
                         purpose="reset-set", cookie=_COOKIE, status=400)
    address = request.client.host if request.client else "unknown"
    outcome = await reset.complete(token, password, address)
    if outcome.status == "weak":
        return show_form(request, "password_reset.html", {"action": RESET_PATH, "token": token,
                                                          "error": outcome.message.capitalize() + "."},
                         purpose="reset-set", cookie=_COOKIE, status=400)
    if outcome.status == "busy":
        return _too_many(request, 1)
    if outcome.status == "invalid":
        return page(request, "message.html", _INVALID, status=400)
    return page(request, "message.html", {
        "heading": "Your password is changed",
        "text": "You were signed out everywhere. Sign in with your new password (and your second factor, "
                "if you use one) through the application you were using, or here to see your account.",
        "link": {"href": SIGN_IN, "text": "Sign in"}})


def password_reset_routes() -> list[KindRoute]:
    return [page_route(FORGOT_PATH, forgot, methods=["GET", "POST"]),
            page_route(RESET_PATH, reset_password, methods=["GET", "POST"])]
