"""The developer portal (issue 10 item 8): ``/developers`` on the authorization server.

Anyone sees the APIs the operator offers (the gateway's routes marked ``self_service``, read from
``portal.gateway_config``). A signed-in user with the ``develop`` role (an admin-only access fact,
``ostiary user access NAME --role develop``) registers apps at the *portal* trust level: exactly the
scopes and audiences of the self-service APIs they pick (server/policy/clients.py), for the
client_credentials grant, and sees, rotates and deletes only the apps they registered. Every form is
CSRF-protected with a MAC of the session; a secret is shown once, on the page that issued it.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.provider import Provider
from ..errors import OAuthError
from ..server.audit import audit
from ..server.requests import parse_form
from ..store import Client
from ..store.identity import User
from .context import provider_of
from .kinds import KindRoute, page_route
from .render import SESSION_COOKIE, get_cookie, page

__all__ = ["DEVELOP_ROLE", "portal_routes"]

DEVELOP_ROLE = "develop"
OWNER = "portal_owner"  # client.extra: the user who registered it here (never settable through metadata)
SIGN_IN = "/signin?return_to=/developers"


def _apis(p: Provider) -> list[dict[str, Any]]:
    return [{"index": i, "name": api.name, "description": api.description, "audience": api.audience,
             "scopes": list(api.scopes), "paths": list(api.paths)} for i, api in enumerate(p.portal_apis)]


async def _is_developer(p: Provider, user: User) -> bool:
    facts = await p.patient_access.facts.get(user.id)
    return facts is not None and DEVELOP_ROLE in facts.roles


def _owned(client: Client | None, user: User) -> bool:
    return client is not None and client.trust_level == "portal" and client.extra.get(OWNER) == user.id


def _app_view(client: Client) -> dict[str, Any]:
    return {"client_id": client.client_id, "name": client.client_name or client.client_id,
            "scope": client.scope, "audiences": list(client.audiences)}


async def _render(request: Request, *, issued: dict[str, str] | None = None, error: str | None = None,
                  status: int = 200) -> Response:
    p = provider_of(request)
    current = await p.signin.signed_in("/developers", get_cookie(request, SESSION_COOKIE))
    context: dict[str, Any] = {"apis": _apis(p), "issued": issued, "error": error, "user": None}
    if current is None:  # signing in is the local sign-in's (second factor included): a link to it
        context["sign_in"] = SIGN_IN
        return page(request, "developers.html", context, status=status)
    session, user = current
    context.update(user=user.username, developer=await _is_developer(p, user),
                   csrf_token=p.sealer.mac("developers", session.digest))
    if context["developer"]:
        context["apps"] = [_app_view(c) for c in await p.clients.list() if _owned(c, user)]
    return page(request, "developers.html", context, status=status)


async def developers(request: Request) -> Response:
    if request.method == "POST":  # "cancel" on the sign-in form
        return RedirectResponse("/developers", status_code=303)
    return await _render(request)


async def _developer_form(request: Request) -> tuple[User, dict[str, str], tuple[str, ...]] | Response:
    """The signed-in developer and the form they sent (CSRF checked), or the page that says why not."""
    p = provider_of(request)
    current = await p.signin.signed_in("/developers", get_cookie(request, SESSION_COOKIE))
    if current is None:
        return await _render(request, error="Sign in first.", status=401)
    session, user = current
    form, repeated = parse_form(await request.body(), request.headers.get("content-type"),
                                repeatable=frozenset({"api"}))
    if not hmac.compare_digest(form.get("csrf_token", "").encode(),
                               p.sealer.mac("developers", session.digest).encode()):
        return await _render(request, error="The form has expired. Please try again.", status=403)
    if not await _is_developer(p, user):
        audit("portal_refused", sub=user.id, reason="no develop role")
        return await _render(request, error="Your account does not have the developer role.", status=403)
    return user, form, repeated.get("api", ())


async def register_app(request: Request) -> Response:
    p = provider_of(request)
    checked = await _developer_form(request)
    if isinstance(checked, Response):
        return checked
    user, form, picked = checked
    apis = p.portal_apis
    chosen = [apis[int(i)] for i in dict.fromkeys(picked) if i.isdigit() and int(i) < len(apis)]
    name = form.get("client_name", "").strip()
    if not chosen or not name:
        return await _render(request, error="Name the app and pick at least one API.", status=400)
    metadata = {"client_name": name, "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": " ".join(dict.fromkeys(s for api in chosen for s in api.scopes)),
                "audiences": [api.audience for api in chosen]}
    try:  # the portal trust level: exactly the self-service APIs' scopes and audiences (server/policy)
        client, issued = await p.registry.create(metadata, level="portal")
    except OAuthError as exc:
        return await _render(request, error=exc.description or exc.error, status=400)
    await p.clients.update(replace(client, extra={**client.extra, OWNER: user.id}))
    await p.signal_change()
    audit("portal_app_registered", sub=user.id, client_id=client.client_id)
    return await _render(request, issued={"client_id": client.client_id, "client_secret": issued.client_secret or "",
                                          "name": name})


async def _owned_app(request: Request) -> tuple[User, Client] | Response:
    p = provider_of(request)
    checked = await _developer_form(request)
    if isinstance(checked, Response):
        return checked
    user = checked[0]
    client = await p.clients.get(request.path_params["client_id"])
    if client is None or not _owned(client, user):
        audit("portal_refused", sub=user.id, client_id=request.path_params["client_id"], reason="not the owner")
        return await _render(request, error="No such app of yours.", status=404)
    return user, client


async def rotate_secret(request: Request) -> Response:
    owned = await _owned_app(request)
    if isinstance(owned, Response):
        return owned
    client, secret = await provider_of(request).registry.rotate_secret(owned[1].client_id)
    await provider_of(request).signal_change()
    return await _render(request, issued={"client_id": client.client_id, "client_secret": secret,
                                          "name": client.client_name or client.client_id})


async def delete_app(request: Request) -> Response:
    owned = await _owned_app(request)
    if isinstance(owned, Response):
        return owned
    await provider_of(request).registry.delete(owned[1].client_id)
    await provider_of(request).signal_change()
    return RedirectResponse("/developers", status_code=303)


def portal_routes() -> list[KindRoute]:
    return [
        page_route("/developers", developers, methods=["GET", "POST"]),
        page_route("/developers/apps", register_app, methods=["POST"]),
        page_route("/developers/apps/{client_id}/rotate", rotate_secret, methods=["POST"]),
        page_route("/developers/apps/{client_id}/delete", delete_app, methods=["POST"]),
    ]
