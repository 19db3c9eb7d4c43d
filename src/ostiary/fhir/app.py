"""``make_fhir_app``: the SMART-protected FHIR R4 API as a Starlette app (mount it at /fhir).

Routing is done here, by hand, so that every path and method gets a FHIR answer: an
OperationOutcome for each error, never an HTML page or a 500.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .access import Access, AuthorizeToken, TokenContext, UserAccessFactory, authenticate
from .capability import RESOURCE_TYPES, capability_statement
from .errors import FhirError, fhir_response
from .interactions import Interactions
from .store import FhirStore, now_instant

__all__ = ["MAX_BODY", "TokenContext", "make_fhir_app"]

log = logging.getLogger("ostiary.fhir")
MAX_BODY = 1 << 20
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


async def read_body(request: Request) -> bytes:
    """The request body, at most MAX_BODY bytes; raises FhirError 413."""
    return await read_capped(request.headers.get("content-length", ""), request.stream(), MAX_BODY,
                             FhirError(413, "the body is too large"))


async def read_capped(declared: str, chunks: AsyncIterator[bytes], limit: int, too_large: FhirError) -> bytes:
    """A body of at most ``limit`` bytes, checked on its Content-Length and while it streams."""
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large
    return body


def _require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in _JSON_TYPES:
        raise FhirError(415, "send FHIR resources as application/fhir+json")


def _not_allowed(method: str, allowed: str) -> FhirError:
    return FhirError(405, f"{method} is not supported here", headers={"Allow": allowed})


def make_fhir_app(
    store: FhirStore,
    authorize_token: AuthorizeToken,
    base_url: str,
    *,
    authorize_url: str | None = None,
    token_url: str | None = None,
    user_access: UserAccessFactory | None = None,
) -> Starlette:
    """The FHIR API whose base is ``base_url`` (``https://host/fhir``); tokens are checked by ``authorize_token``.

    ``authorize_url`` / ``token_url`` go into the CapabilityStatement (default: /authorize and
    /token at the base URL's origin). ``user_access`` gives per-user rules for user/ scopes.
    """
    base = base_url.rstrip("/")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    capability = capability_statement(base, authorize_url or f"{origin}/authorize", token_url or f"{origin}/token",
                                      now_instant())
    interactions = Interactions(store, base)

    async def access(request: Request) -> Access:
        context = await authenticate(base, request.headers.getlist("authorization"), authorize_token)
        return Access(context, user_access)

    async def route(request: Request, parts: list[str]) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        if parts == ["metadata"]:
            if method != "GET":
                raise _not_allowed(method, "GET")
            return fhir_response(capability)
        if not parts or parts[0] not in RESOURCE_TYPES or len(parts) > 2:
            raise FhirError(404, "unknown resource type or unsupported path")
        resource_type = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return await interactions.search(await access(request), resource_type,
                                                 parse_qsl(request.url.query, keep_blank_values=True))
            if method == "POST":
                granted = await access(request)
                _require_json(request)
                return await interactions.create(granted, resource_type, await read_body(request))
            raise _not_allowed(method, "GET, POST")
        if parts[1] == "_search":
            if method != "POST":
                raise _not_allowed(method, "POST")
            granted = await access(request)
            form = (await read_body(request)).decode("utf-8", "replace")
            items = parse_qsl(request.url.query, keep_blank_values=True) + parse_qsl(form, keep_blank_values=True)
            return await interactions.search(granted, resource_type, items)
        resource_id = parts[1]
        if method == "GET":
            granted = await access(request)
            if not _ID.fullmatch(resource_id):
                raise FhirError(404, f"{resource_type}/{resource_id} is not known")
            return await interactions.read(granted, resource_type, resource_id)
        if method == "PUT":
            granted = await access(request)
            _require_json(request)
            if not _ID.fullmatch(resource_id):
                raise FhirError(400, "malformed resource id")
            return await interactions.update(granted, resource_type, resource_id, await read_body(request),
                                             request.headers.get("if-match"))
        raise _not_allowed(method, "GET, PUT")

    async def endpoint(request: Request) -> Response:
        parts = [p for p in request.path_params.get("path", "").split("/") if p]
        try:
            return await route(request, parts)
        except FhirError as exc:
            return exc.response()
        except Exception:  # a bug: log it with an id, answer without a trace
            incident = uuid.uuid4().hex[:12]
            log.exception("FHIR request failed (incident %s)", incident)
            return FhirError(500, f"internal error (incident {incident})").response()

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)])
