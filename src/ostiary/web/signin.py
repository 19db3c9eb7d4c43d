"""Password sign-in on the server's own pages (the EHR launcher, the developer portal): one copy of the rules.

The form's CSRF value is a MAC of a nonce cookie set with the form; the answer to a refused sign-in says
why without telling which of username and password was wrong, and a throttled one carries Retry-After
(RFC 9110 §10.2.3). Success starts (or joins) the SSO session.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from ..app.provider import Provider
from .render import SESSION_COOKIE, get_cookie, set_cookie

__all__ = ["SignIn", "form_csrf", "form_nonce", "password_sign_in"]


@dataclass(frozen=True, slots=True)
class SignIn:
    """The session cookie on success; else the message and status to show the form again with."""

    cookie: str | None
    error: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def finish(self, request: Request, response: Response, provider: Provider) -> Response:
        """``response`` with the session cookie (success) or the refusal's fields."""
        if self.cookie is not None:
            set_cookie(request, response, SESSION_COOKIE, self.cookie, provider.settings.oidc.session_lifetime)
        response.headers.update(self.headers)
        return response


def form_nonce(request: Request, provider: Provider, cookie: str) -> str:
    """The nonce the sign-in form's CSRF value is made from (set it as ``cookie`` with the form)."""
    return get_cookie(request, cookie) or provider.sealer.mac(f"{cookie}-nonce", str(id(request)))


def form_csrf(provider: Provider, purpose: str, nonce: str) -> str:
    return provider.sealer.mac(purpose, nonce)


async def password_sign_in(request: Request, provider: Provider, form: dict[str, str], *, purpose: str,
                           cookie: str) -> SignIn:
    """Check the form's CSRF value and the password; never raises for bad input."""
    nonce = get_cookie(request, cookie) or ""
    if not nonce or not hmac.compare_digest(form.get("csrf_token", "").encode(),
                                            form_csrf(provider, purpose, nonce).encode()):
        return SignIn(None, "The form has expired. Please try again.", 403)
    address = request.client.host if request.client else "unknown"
    result = await provider.user_service.login(form.get("username", ""), form.get("password", ""), address)
    if result.user is None:
        if result.retry_after:
            return SignIn(None, f"Too many sign-in attempts. Try again in {result.retry_after} seconds.", 429,
                          {"Retry-After": str(result.retry_after)})
        return SignIn(None, "Wrong username or password.", 400)
    session_cookie, _ = await provider.flow.log_in(result.user, get_cookie(request, SESSION_COOKIE))
    return SignIn(session_cookie)
