"""UserInfo (OIDC Core §5.3) and logout (RP-Initiated Logout 1.0)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import InvalidRequest, MissingToken, PageError
from ..server.consent import client_display_name
from ..server.credentials import digest
from ..server.logout import LogoutRequest
from ..server.requests import parse_form
from .context import provider_of
from .errors import json_response
from .kinds import KindRoute, api_route, page_route
from .pages import request_params
from .render import SESSION_COOKIE, clear_cookie, get_cookie, page

__all__ = ["session_routes"]

FRONTCHANNEL_DELAY = 2  # seconds the signed-out page gives the front-channel logout iframes before moving on


async def bearer_token(request: Request) -> str:
    """RFC 6750 §2.1 header or §2.2 form body, never both; none at all is a bare 401 (§3.1)."""
    header = request.headers.get("authorization")
    from_header = header[7:].strip() if header and header[:7].lower() == "bearer " else None
    if header and from_header is None:
        raise InvalidRequest("the Authorization header must use the Bearer scheme")
    from_body = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form, _ = parse_form(await request.body(), request.headers.get("content-type"))
        from_body = form.get("access_token")
    if from_header and from_body:
        raise InvalidRequest("the access token was sent in more than one way (RFC 6750 §2)")
    token = from_header or from_body
    if not token:
        raise MissingToken("no access token was sent")
    return token


async def userinfo(request: Request) -> Response:
    claims = await provider_of(request).userinfo.handle(await bearer_token(request))
    return json_response(claims, headers={"Cache-Control": "no-store"})


def _logout_csrf(request: Request, cookie: str) -> str:
    return provider_of(request).sealer.mac("logout", digest(cookie))


def _after_logout(request: Request, req: LogoutRequest, frames: Sequence[str] = ()) -> Response:
    uri = req.post_logout_redirect_uri
    if uri and req.state:
        uri += ("&" if urlsplit(uri).query else "?") + urlencode({"state": req.state})
    if frames:  # Front-Channel Logout 1.0 §4: the clients' logout URIs in iframes, then on (no script needed)
        origins = [f"{u.scheme}://{u.netloc}" for u in map(urlsplit, frames)]
        return page(request, "signed_out.html", {"frames": frames, "next_uri": uri, "delay": FRONTCHANNEL_DELAY},
                    frame_origins=origins)
    if uri:
        return RedirectResponse(uri, status_code=303)
    return page(request, "message.html", {"heading": "You are signed out",
                                          "text": "You can close this window."})


async def logout(request: Request) -> Response:
    p = provider_of(request)
    params, _ = await request_params(request)
    req = await p.logout.validate(params)
    cookie = get_cookie(request, SESSION_COOKIE)
    current = await p.flow.session(cookie)
    if current is None or cookie is None:
        return _after_logout(request, await p.logout.for_user(req, None))
    hidden = {k: v for k, v in params.items()
              if k in ("id_token_hint", "post_logout_redirect_uri", "state", "client_id")}
    name = client_display_name(req.client, req.client.client_id) if req.client else None
    ctx = {"username": current[1].username, "client_name": name,
           "csrf_token": _logout_csrf(request, cookie), "hidden": hidden, "action": "/logout/confirm"}
    return page(request, "logout.html", ctx)


async def logout_confirm(request: Request) -> Response:
    p = provider_of(request)
    form, _ = parse_form(await request.body(), request.headers.get("content-type"))
    req = await p.logout.validate(form)
    cookie = get_cookie(request, SESSION_COOKIE)
    if cookie is None:
        return _after_logout(request, await p.logout.for_user(req, None))
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), _logout_csrf(request, cookie).encode()):
        raise PageError("invalid_request", "The form has expired. Please try again.", 403)
    if form.get("decision") != "logout":
        return page(request, "message.html", {"heading": "You are still signed in", "text": "Nothing changed."})
    session = await p.logout.end(cookie)
    frames = await p.logout.frontchannel_uris(session) if session is not None else []
    req = await p.logout.for_user(req, session.user_id if session is not None else None)
    response = _after_logout(request, req, frames)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


def session_routes() -> list[KindRoute]:
    return [
        api_route("/userinfo", userinfo, methods=["GET", "POST"]),
        page_route("/logout", logout, methods=["GET", "POST"]),
        page_route("/logout/confirm", logout_confirm, methods=["POST"]),
    ]
