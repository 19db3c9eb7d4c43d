"""The one error renderer: every error of every route becomes the answer of the route's declared kind.

Routes raise (`OAuthError`, `PageError`, `RedirectError`, `FhirError`, Starlette's `HTTPException`), and
`ErrorMiddleware` answers, by the kind the route was registered with (web/kinds.py):

- ``api``: RFC 6749 §5.2 JSON, RFC 6750 §3 ``WWW-Authenticate``, RFC 7591 §3.2.2 registration errors;
- ``page``: the HTML error page with the error code and a readable description; a `RedirectError` goes
  back to the client (or, for a client the user has no reason to trust, to the page: RFC 9700 §4.11.2);
- ``fhir``: an OperationOutcome.

Anything else raised is a bug: logged with a reference, answered 500 in the route's kind without a trace.
Security headers are added to every answer, errors included, by web/security_headers.py.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from http import HTTPStatus
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
    PageError,
    RedirectError,
    RegistrationThrottled,
)
from ..fhir.errors import FhirError, fhir_response, operation_outcome
from .kinds import Kind, kind_of

__all__ = ["HTTP_ERROR_HANDLERS", "ErrorMiddleware", "error_page", "error_response", "json_response",
           "parse_json_body", "render_error"]

log = logging.getLogger("ostiary")
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



def _http_code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed"}.get(status, "invalid_request")


def _page(scope: Scope, error: str, description: str, status: int,
          headers: Mapping[str, str] | None = None) -> Response:
    from .render import render_error_page

    response = render_error_page(scope["app"].state.settings, error, description, status)
    response.headers.update(headers or {})
    return response


def error_page(request: Request, err: PageError, status: int | None = None) -> Response:
    """The page of `err`, for a route that adds to its answer (ends an interaction, clears a cookie);
    any other route raises `err` and `render_error` answers with this same page."""
    return _page(request.scope, err.error, err.description, status or err.status)


async def _redirect(exc: RedirectError, scope: Scope, receive: Receive) -> Response:
    """The client's redirect URI, unless the client may not be sent errors yet (flow.refuse decides)."""
    from .pages import authorization_response

    outcome = await scope["app"].state.provider.flow.refuse(exc, None, None, exc.client_id)
    if isinstance(outcome, PageError):
        return _page(scope, outcome.error, outcome.description, outcome.status)
    return authorization_response(Request(scope, receive), outcome.target, outcome.params)


def _bug(scope: Scope, kind: Kind) -> Response:
    reference = secrets.token_hex(6)
    log.exception("unhandled error %s on %s %s", reference, scope.get("method"), scope.get("path"))
    if kind == "page":
        return _page(scope, "server_error", f"Something broke on our side (reference {reference}).", 500)
    if kind == "fhir":
        return fhir_response(operation_outcome(500, f"internal error (incident {reference})"), 500)
    return json_response({"error": "server_error", "error_description": f"internal error, reference {reference}"},
                         status=500)


async def render_error(exc: Exception, scope: Scope, receive: Receive, realm: str = "ostiary") -> Response:
    """The answer to `exc` in the kind of the route `scope` goes to; call it only inside an ``except``."""
    kind = kind_of(scope)
    if isinstance(exc, RedirectError):
        if kind == "page":
            return await _redirect(exc, scope, receive)
        exc = exc.error
    if isinstance(exc, HTTPException):
        status, description, headers = exc.status_code, str(exc.detail), dict(exc.headers or {})
        if kind == "page":
            return _page(scope, _http_code(status), description, status, headers)
        if kind == "fhir":
            return fhir_response(operation_outcome(status, description), status, headers)
        return json_response({"error": _http_code(status), "error_description": description}, status=status,
                             headers=headers)
    if isinstance(exc, FhirError):
        if kind == "page":
            return _page(scope, "invalid_request", exc.diagnostics[:1].upper() + exc.diagnostics[1:] + ".",
                         exc.status, exc.headers)
        if kind == "fhir":
            return exc.response()
        return json_response({"error": "invalid_request", "error_description": exc.diagnostics},
                             status=exc.status, headers=exc.headers)
    if isinstance(exc, PageError):
        if kind == "page":
            return error_page(Request(scope, receive), exc)
        if kind == "fhir":
            return fhir_response(operation_outcome(exc.status, exc.description), exc.status)
        return json_response({"error": exc.error, "error_description": exc.description}, status=exc.status)
    if isinstance(exc, OAuthError):
        if kind == "page":  # a page cannot carry a challenge, so no 401 (RFC 9110 §15.5.2)
            status = 400 if exc.status_code == 401 else exc.status_code
            return _page(scope, exc.error, exc.description or HTTPStatus(status).phrase, status)
        if kind == "fhir":
            return fhir_response(operation_outcome(exc.status_code, exc.description or exc.error), exc.status_code)
        return error_response(exc, realm, basic_auth=used_basic_auth(scope))
    return _bug(scope, kind)


async def _http_exception(request: Request, exc: Exception) -> Response:
    return await render_error(exc, request.scope, request.receive)


HTTP_ERROR_HANDLERS: Mapping[Any, Any] = {HTTPException: _http_exception}


class ErrorMiddleware:
    """Every exception a route raises -> `render_error`; never a stack trace to the caller."""

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

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                if not isinstance(exc, OAuthError | PageError | RedirectError | FhirError | HTTPException):
                    log.exception("error after the answer started on %s %s", scope.get("method"), scope.get("path"))
                return
            try:
                response = await render_error(exc, scope, receive, self.realm)
            except Exception:  # rendering the error failed (e.g. before startup): a bare 500, still no trace
                response = _bug(scope, "api")
            await response(scope, receive, send)
