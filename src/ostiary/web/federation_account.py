"""The account page's "Linked identity providers" section, and removing a link."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.provider import Provider
from ..server.federation.accounts import LastSignInMethod
from ..store.identity import Session, User
from .account_forms import Section, account_change, account_csrf, provider_of
from .kinds import KindRoute, page_route
from .render import page

__all__ = ["federation_account_routes", "linked_identities_section"]

UNLINK_ACTION = "/account/federation/unlink"


async def linked_identities_section(request: Request, p: Provider, session: Session, user: User) -> Section | None:
    links = await p.federated_accounts.of_user(user.id)
    if p.federation_login is None and not links:
        return None
    upstreams = p.federation_login.upstreams if p.federation_login else {}
    shown = [{"provider": upstreams[link.provider].label if link.provider in upstreams else link.provider,
              "provider_id": link.provider, "subject": link.subject, "label": link.label,
              "last_used": time.strftime("%Y-%m-%d", time.gmtime(link.last_used))} for link in links]
    return Section("account_federation.html", {"links": shown, "csrf_token": account_csrf(p, session),
                                               "action": UNLINK_ACTION})


async def unlink(request: Request) -> Response:
    """Remove one of the user's links: a recent credential first (account_change), never the last way in."""
    answered = await account_change(request)
    if isinstance(answered, Response):
        return answered
    _, user, form = answered
    try:
        await provider_of(request).federated_accounts.unlink(user, form.get("provider", ""), form.get("subject", ""))
    except LastSignInMethod:
        return page(request, "message.html", {
            "heading": "This link cannot be removed",
            "text": "It is the only way to sign in to this account. Set a password or link another "
                    "identity provider first."}, status=409)
    return RedirectResponse("/account", status_code=303)


def federation_account_routes() -> list[KindRoute]:
    return [page_route(UNLINK_ACTION, unlink, methods=["POST"])]
