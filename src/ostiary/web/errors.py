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
)

__all__ = ["HTTP_ERROR_HANDLERS", "ErrorMiddleware", "error_response", "json_response", "parse_json_body"]

log = logging.getLogger("ostiary")
PAGE_PATHS = ("/authorize", "/interaction/", "/logout", "/account", "/demo", "/smart/launcher")
MAX_JSON_BYTES = 64 * 1024


def json_response(body: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def error_response(exc: OAuthError, realm: str = "ostiary") -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if isinstance(exc, MissingToken):
        headers["WWW-Authenticate"] = f'Bearer realm="{_quote(realm)}"'
    elif isinstance(exc, InvalidToken | InsufficientScope):
        parts = [f'Bearer realm="{_quote(realm)}"', f'error="{exc.error}"']
        if exc.description:
            parts.append(f'error_description="{_quote(exc.description)}"')
        headers["WWW-Authenticate"] = ", ".join(parts)
    elif isinstance(exc, ClientAuthThrottled):
        headers["Retry-After"] = str(exc.retry_after)  # RFC 9110 §10.2.3
    elif exc.status_code == 401:
        # RFC 6749 §5.2: invalid_client after Authorization-header auth is 401 + WWW-Authenticate;
        # RFC 9110 §15.5.2 wants the header on every 401, so it is always sent.
        headers["WWW-Authenticate"] = f'Basic realm="{_quote(realm)}"'
    return json_response(exc.as_dict(), status=exc.status_code, headers=headers)


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
            await error_response(exc, self.realm)(scope, receive, send)
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
