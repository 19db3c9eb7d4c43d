"""The account page's "Email address" section, asking for a verification mail, and the mailed link."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..app.provider import Provider
from ..server.email.verify import CONFIRM_PATH
from ..store.identity import Session, User
from .account_forms import Section, account_csrf, account_form, provider_of
from .kinds import KindRoute, page_route
from .password_reset import check_form, show_form
from .render import page

__all__ = ["email_account_routes", "email_section"]

VERIFY_PATH = "/account/email/verify"
_COOKIE = "ostiary_verify"


async def email_section(request: Request, p: Provider, session: Session, user: User) -> Section | None:
    email = user.claims.get("email")
    return Section("account_email.html", {
        "email": email if isinstance(email, str) else None, "verified": user.claims.get("email_verified") is True,
        "mail": p.mail is not None, "csrf_token": account_csrf(p, session), "action": VERIFY_PATH})


def _back(request: Request, heading: str, text: str, status: int = 200) -> Response:
    return page(request, "message.html", {"heading": heading, "text": text}, status=status)


async def send_verification(request: Request) -> Response:
    answered = await account_form(request)
    if isinstance(answered, Response):
        return answered
    _, user, _ = answered
    mail = provider_of(request).mail
    if mail is None:
        return _back(request, "No mail is sent here", "Ask your administrator to verify your address.", 404)
    result = await mail.verification.send(user)
    if isinstance(result, int):
        response = _back(request, "Please wait", f"A mail was sent recently. Try again in {result} seconds.", 429)
        response.headers["Retry-After"] = str(result)
        return response
    hours = max(1, mail.verification.lifetime // 3600)
    answers = {
        "sent": ("Check your mail", f"We sent a link to your address. Open it within {hours} hour(s) to confirm it."),
        "no_address": ("No address to verify", "Your account has no email address. An administrator can set one."),
        "verified": ("Already verified", "Your email address is already verified."),
        "failed": ("The mail could not be sent", "Try again later, or ask your administrator."),
    }
    heading, text = answers[result]
    return _back(request, heading, text, 503 if result == "failed" else 200)


_INVALID = ("This link cannot be used", "It was already used, has expired, or your address changed since it was "
            "sent. Ask for a new one on your account page.")


async def confirm(request: Request) -> Response:
    mail = provider_of(request).mail
    if mail is None:
        return _back(request, "No mail is sent here", "Ask your administrator to verify your address.", 404)
    if request.method == "GET":  # a form, not the change itself: mail scanners open links
        token = request.query_params.get("token", "")
        if not await mail.verification.usable(token):
            return _back(request, *_INVALID, status=400)
        return show_form(request, "email_confirm.html", {"action": CONFIRM_PATH, "token": token},
                         purpose="verify-email", cookie=_COOKIE)
    form = await check_form(request, purpose="verify-email", cookie=_COOKIE)
    user = await mail.verification.confirm(form.get("token", ""))
    if user is None:
        return _back(request, *_INVALID, status=400)
    return _back(request, "Your email address is verified",
                 f"{user.claims.get('email')} is confirmed. Password reset links can now be sent to it.")


def email_account_routes() -> list[KindRoute]:
    return [page_route(VERIFY_PATH, send_verification, methods=["POST"]),
            page_route(CONFIRM_PATH, confirm, methods=["GET", "POST"])]
