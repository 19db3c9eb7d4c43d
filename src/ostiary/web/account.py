"""The account page: applications the user allowed, then one section per sign-in feature.

Each section (second factors, passkeys, linked identities, email) is a function in `SECTIONS` that
returns its template and context for the signed-in user, or None to show nothing; its forms post to
its own routes and check `account_csrf`. Only the session's user is ever shown or changed. The
helpers sections use live in web/account_forms.py (re-exported here).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..server.consent import client_display_name
from .account_forms import (
    REAUTHENTICATE,
    RECENT_CREDENTIAL,
    AccountSection,
    Section,
    account_change,
    account_csrf,
    account_form,
    credential_is_recent,
    provider_of,
    signed_in,
)
from .account_totp import totp_routes, totp_section
from .email_account import email_section
from .federation_account import linked_identities_section
from .kinds import KindRoute, page_route
from .passkeys import passkeys_section
from .render import describe_consent, page

__all__ = ["REAUTHENTICATE", "RECENT_CREDENTIAL", "SECTIONS", "AccountSection", "Section", "account_change",
           "account_csrf", "account_form", "account_routes", "credential_is_recent", "signed_in"]

SECTIONS: tuple[AccountSection, ...] = (totp_section, passkeys_section, email_section, linked_identities_section)


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
    return [page_route("/account", account, methods=["GET", "POST"]), *totp_routes()]
