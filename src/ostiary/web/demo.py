"""A built-in demo app (only with the demo data): signs in with the public `demo-app` client, PKCE S256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..app.bootstrap import DEMO_APP_ID
from ..app.provider import Provider
from ..errors import PageError
from ..jwt import JWTInvalid, decode_unverified
from ..server.requests import EndpointRequest
from .kinds import KindRoute, page_route
from .render import clear_cookie, get_cookie, page, set_cookie

__all__ = ["demo_routes"]

COOKIE = "ostiary_demo"


def _provider(request: Request) -> Provider:
    provider: Provider = request.app.state.provider
    return provider


async def demo_start(request: Request) -> Response:
    p = _provider(request)
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"client_id": DEMO_APP_ID, "response_type": "code", "scope": "openid profile email",
              "redirect_uri": p.settings.issuer + "/demo/callback", "state": state, "nonce": nonce,
              "code_challenge": challenge, "code_challenge_method": "S256"}
    response = RedirectResponse("/authorize?" + urlencode(params), status_code=303)
    set_cookie(request, response, COOKIE, f"{state}.{verifier}.{nonce}", 900)
    return response


async def demo_callback(request: Request) -> Response:
    p = _provider(request)
    state, _, rest = (get_cookie(request, COOKIE) or "").partition(".")
    verifier, _, nonce = rest.partition(".")
    q = request.query_params
    if not state or not hmac.compare_digest(q.get("state", "").encode(), state.encode()):
        raise PageError("invalid_request", "State mismatch: start again at /demo.")
    if "error" in q:
        return page(request, "message.html", {"heading": "Demo app: not signed in",
                                              "text": f"{q['error']}: {q.get('error_description', '')}"})
    form = {"grant_type": "authorization_code", "code": q.get("code", ""), "code_verifier": verifier,
            "redirect_uri": p.settings.issuer + "/demo/callback", "client_id": DEMO_APP_ID}
    tokens = await p.token_endpoint.handle(EndpointRequest(endpoint_url=p.url("token_endpoint"), form=form))
    claims = await p.userinfo.handle(tokens["access_token"])
    response = page(request, "demo.html", _end_page(tokens, claims, nonce))
    clear_cookie(request, response, COOKIE)
    return response


def _pretty(data: object) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def _end_page(tokens: dict[str, Any], userinfo: dict[str, Any], nonce: str) -> dict[str, Any]:
    """What the demo app received, decoded for people: ID token, access token, UserInfo."""
    id_token = decode_unverified(tokens["id_token"])
    sections = [{"title": "ID token", "note": "Who signed in (OIDC Core §2), straight from the token endpoint.",
                 "json": _pretty({"header": id_token.header, "claims": id_token.claims})}]
    try:
        access = decode_unverified(tokens["access_token"])
        sections.append({"title": "Access token", "note": "A JWT (RFC 9068) for APIs; apps need not read it.",
                         "json": _pretty({"header": access.header, "claims": access.claims})})
    except JWTInvalid:
        sections.append({"title": "Access token", "note": "An opaque token: APIs ask the server about it (RFC 7662).",
                         "json": _pretty({"expires_in": tokens.get("expires_in"), "scope": tokens.get("scope")})})
    sections.append({"title": "UserInfo", "note": "What /userinfo answered for the access token (OIDC Core §5.3).",
                     "json": _pretty(userinfo)})
    return {"name": userinfo.get("name") or userinfo["sub"], "sections": sections, "nonce_ok":
            id_token.claims.get("nonce") == nonce, "id_token": tokens["id_token"], "client_id": DEMO_APP_ID}


def demo_routes() -> list[KindRoute]:
    return [page_route("/demo", demo_start, methods=["GET"]),
            page_route("/demo/callback", demo_callback, methods=["GET"])]
