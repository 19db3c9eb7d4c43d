"""Turning errors into HTTP: RFC 6749 §5.2 JSON, RFC 6750 §3 WWW-Authenticate, never a stack trace."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    ClientAuthThrottled,
    InsufficientScope,
    InvalidClientMetadata,
    InvalidToken,
    MissingToken,
    OAuthError,
    RegistrationThrottled,
)

__all__ = ["HTTP_ERROR_HANDLERS", "ErrorMiddleware", "error_response", "json_response", "parse_json_body"]

log = logging.getLogger("ostiary")
PAGE_PATHS = ("/authorize", "/interaction/", "/logout", "/account", "/demo", "/smart/launcher", "/developers")
MAX_JSON_BYTES = 64 * 1024


def json_response(body: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _challenge(scheme: str, realm: str, exc: OAuthError) -> str:
    parts = [f'{scheme} realm="{_quote(realm)}"', f'error="{exc.error}"']
    if exc.description:
        parts.append(f'error_description="{_quote(exc.description)}"')
    return ", ".join(parts)


def error_response(exc: OAuthError, realm: str = "ostiary", *, basic_auth: bool = False) -> Response:
    """The RFC answer for `exc`; `basic_auth`: the request authenticated with HTTP Basic."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    status = exc.status_code
    if isinstance(exc, MissingToken):
        headers["WWW-Authenticate"] = f'Bearer realm="{_quote(realm)}"'
    elif isinstance(exc, InvalidToken | InsufficientScope):
        headers["WWW-Authenticate"] = _challenge("Bearer", realm, exc)
    elif isinstance(exc, ClientAuthThrottled | RegistrationThrottled):
        headers["Retry-After"] = str(exc.retry_after)  # RFC 9110 §10.2.3
    elif status == 401 and basic_auth:
        # RFC 6749 §5.2: the client authenticated with HTTP Basic: 401 with the Basic challenge,
        # naming the error in its parameters (clients such as openid-client read it from there).
        headers["WWW-Authenticate"] = _challenge("Basic", realm, exc)
    elif status == 401:
        # Any other authentication (client_secret_post, an assertion, none): RFC 6749 §5.2's 400, since
        # a 401 must carry a challenge (RFC 9110 §15.5.2) and there is no scheme the client used.
        status = 400
    return json_response(exc.as_dict(), status=status, headers=headers)


def used_basic_auth(scope: Scope) -> bool:
    """True when the request carries `Authorization: Basic ...` (the scheme is case-insensitive)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bool(value.lstrip()[:6].lower() == b"basic ")
    return False


async def parse_json_body(request: Request, error: type[OAuthError] = InvalidClientMetadata) -> Any:
    """The JSON body; raises `error` (registration: invalid_client_metadata) when it is not JSON."""
    mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if mime != "application/json":
        raise error("the request body must be application/json")
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        raise error("the request body is too large")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise error("the request body is not valid JSON") from None


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    code = "not_found" if exc.status_code == 404 else "invalid_request"
    return json_response({"error": code, "error_description": str(exc.detail)}, status=exc.status_code,
                         headers=headers)


HTTP_ERROR_HANDLERS: Mapping[Any, Any] = {HTTPException: _http_exception}


class ErrorMiddleware:
    """OAuthError -> its RFC response; anything else -> server_error with an id that is logged."""

    def __init__(self, app: ASGIApp, realm: str = "ostiary") -> None:
        self.app = app
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        html = scope["path"].startswith(PAGE_PATHS)
        try:
            await self.app(scope, receive, tracking_send)
        except OAuthError as exc:
            if started:
                raise
            if html:
                from .render import render_error_page

                page = render_error_page(scope["app"].state.settings, exc.error, exc.description or exc.error,
                                         exc.status_code if exc.status_code < 500 else 400)
                await page(scope, receive, send)
                return
            await error_response(exc, self.realm, basic_auth=used_basic_auth(scope))(scope, receive, send)
        except Exception:
            error_id = secrets.token_hex(6)
            log.exception("unhandled error %s on %s %s", error_id, scope.get("method"), scope.get("path"))
            if started:
                return
            body = {"error": "server_error", "error_description": f"internal error, reference {error_id}"}
            if html:
                from .render import render_error_page

                page = render_error_page(scope["app"].state.settings, "server_error",
                                         f"Something broke on our side (reference {error_id}).", 500)
                await page(scope, receive, send)
                return
            await json_response(body, status=500, headers={"Cache-Control": "no-store"})(scope, receive, send)
