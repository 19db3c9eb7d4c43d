"""The account page's authenticator-app section (TOTP, RFC 6238) and its routes under /account/totp.

Set up: a pending secret is shown as a QR code (rendered here as inline SVG, no script or image
request) and as text; it becomes active only after a correct code, and the recovery codes are then
shown once. Every change needs a recent credential (account_forms.account_change).
"""

from __future__ import annotations

import hashlib
import hmac

import segno
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.provider import Provider
from ..server.mfa.service import PendingTotp
from ..server.mfa.totp import DIGITS
from ..store.identity import Session, User
from .account_forms import Section, account_change, account_csrf, credential_is_recent, provider_of
from .kinds import KindRoute, page_route
from .render import clear_cookie, get_cookie, page, set_cookie

__all__ = ["qr_svg", "totp_routes", "totp_section"]

ERRORS = {"code": "That code was not right. Check the time on your phone and try the newest code.",
          "setup": "The set-up was started in another browser or has changed. Start it again here."}
SETUP_COOKIE = "ostiary_totp_setup"  # binds a pending secret to the browser that started the set-up
SETUP_LIFETIME = 3600


def qr_svg(uri: str) -> Markup:
    """The QR code of `uri` as inline SVG, dark on white with the quiet zone, named for screen readers."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff", svgclass="qr",
                                                title="QR code for your authenticator app")
    # segno writes only path data and the fixed title above: nothing from the user is in it
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1))  # noqa: S704


async def totp_section(request: Request, p: Provider, session: Session, user: User) -> Section:
    status = await p.mfa.status(user.id)
    recent = credential_is_recent(session)
    ctx: dict[str, object] = {
        "csrf_token": account_csrf(p, session), "state": status.totp, "recent": recent,
        "recovery_codes_left": status.recovery_codes_left, "digits": DIGITS,
        "error": ERRORS.get(request.query_params.get("totp_error", "")),
    }
    pending = await _own_pending(request, p, session, user) if status.totp == "pending" and recent else None
    if pending is not None:
        ctx.update(secret=pending.grouped, uri=pending.uri, qr=qr_svg(pending.uri))
    return Section("account_totp.html", ctx)


def _setup_mac(p: Provider, session: Session, secret: str) -> str:
    """Binds a pending secret to the session (and so the browser) that asked for it."""
    return p.sealer.mac("totp-setup", session.digest + ":" + hashlib.sha256(secret.encode()).hexdigest())


async def _own_pending(request: Request, p: Provider, session: Session, user: User) -> PendingTotp | None:
    """The pending secret, only for the browser that started the set-up: another session of the user (a
    phished password's, even a recent one) would otherwise read the factor about to be turned on."""
    pending = await p.mfa.pending_totp(user.id, user.username)
    cookie = get_cookie(request, SETUP_COOKIE) or ""
    if pending is None or not hmac.compare_digest(cookie.encode(), _setup_mac(p, session, pending.secret).encode()):
        return None
    return pending


async def begin(request: Request) -> Response:
    answered = await account_change(request)
    if isinstance(answered, Response):
        return answered
    session, user, _ = answered
    p = provider_of(request)
    pending = await p.mfa.begin_totp(user.id, user.username)
    response = RedirectResponse("/account#totp", status_code=303)
    if pending is not None:
        set_cookie(request, response, SETUP_COOKIE, _setup_mac(p, session, pending.secret), SETUP_LIFETIME)
    return response


async def activate(request: Request) -> Response:
    answered = await account_change(request)
    if isinstance(answered, Response):
        return answered
    session, user, form = answered
    p = provider_of(request)
    if await _own_pending(request, p, session, user) is None:  # started elsewhere: this browser never saw it
        return RedirectResponse("/account?totp_error=setup#totp", status_code=303)
    codes = await p.mfa.activate_totp(user.id, form.get("code", "")[:64], session.digest)
    if codes is None:
        return RedirectResponse("/account?totp_error=code#totp", status_code=303)
    response = _codes_page(request, codes, "Your authenticator app is set up")
    clear_cookie(request, response, SETUP_COOKIE)
    return response


async def recovery_codes(request: Request) -> Response:
    answered = await account_change(request)
    if isinstance(answered, Response):
        return answered
    _, user, _ = answered
    p = provider_of(request)
    if not await p.mfa.has_totp(user.id):
        return RedirectResponse("/account#totp", status_code=303)
    return _codes_page(request, await p.mfa.new_recovery_codes(user.id), "New recovery codes")


async def remove(request: Request) -> Response:
    answered = await account_change(request)
    if isinstance(answered, Response):
        return answered
    _, user, _ = answered
    await provider_of(request).mfa.remove(user.id)
    return RedirectResponse("/account#totp", status_code=303)


def _codes_page(request: Request, codes: list[str], heading: str) -> Response:
    return page(request, "account_recovery_codes.html", {"heading": heading, "codes": codes})


def totp_routes() -> list[KindRoute]:
    return [page_route("/account/totp/begin", begin, methods=["POST"]),
            page_route("/account/totp/activate", activate, methods=["POST"]),
            page_route("/account/totp/recovery-codes", recovery_codes, methods=["POST"]),
            page_route("/account/totp/remove", remove, methods=["POST"])]
