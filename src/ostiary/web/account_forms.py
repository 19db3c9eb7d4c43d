"""What every section of the account page uses: the signed-in user, the CSRF-checked form, and the
rule for credential changes (a credential verified within the last `RECENT_CREDENTIAL` seconds).

Feature modules (web/account_*.py) import these from here, and web/account.py imports their section
functions into `SECTIONS`, so no import loop arises.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.provider import Provider
from ..errors import PageError
from ..server.requests import parse_form
from ..store.identity import Session, User
from .context import provider_of
from .render import SESSION_COOKIE, get_cookie, page

__all__ = [
    "REAUTHENTICATE",
    "RECENT_CREDENTIAL",
    "SIGN_IN",
    "AccountSection",
    "Section",
    "account_change",
    "account_csrf",
    "account_form",
    "credential_is_recent",
    "provider_of",
    "signed_in",
]

# Credential changes (add or remove a factor, link or unlink an identity) need a credential verified
# this recently in this session; otherwise the user signs in again (with every factor the account has).
RECENT_CREDENTIAL = 300
REAUTHENTICATE = "/signin?return_to=/account&prompt=login"
SIGN_IN = "/signin?return_to=/account"  # the local sign-in (same steps, second factor included)


@dataclass(frozen=True, slots=True)
class Section:
    template: str  # a partial in templates/, included in account.html
    context: Mapping[str, Any] = field(default_factory=dict)


AccountSection = Callable[[Request, Provider, Session, User], Awaitable[Section | None]]


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


def credential_is_recent(session: Session, now: int | None = None) -> bool:
    """Whether the session's credential was verified within `RECENT_CREDENTIAL` seconds."""
    return session.auth_time >= (int(time.time()) if now is None else now) - RECENT_CREDENTIAL


async def account_change(request: Request) -> tuple[Session, User, dict[str, str]] | Response:
    """`account_form` for a credential change: a redirect through the sign-in when the session's
    credential is not recent (nothing is changed then)."""
    answered = await account_form(request)
    if isinstance(answered, Response) or credential_is_recent(answered[0]):
        return answered
    return RedirectResponse(REAUTHENTICATE, status_code=303)
