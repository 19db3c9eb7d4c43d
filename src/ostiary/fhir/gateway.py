"""The FHIR gateway: SMART enforcement in front of any FHIR server.

Each request is checked with ``smart.policy`` exactly as the built-in API checks it; reads, updates
and deletes first fetch the resource from the upstream to check its compartment and restrictions;
searches are narrowed by adding ``patient=`` (or ``_id=``) and the scope's restriction parameters.
Allowed requests pass through with the upstream's answer streamed back unbuffered. Only
type-level and instance-level interactions pass: anything the gateway cannot check is refused.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..resource.principal import Principal
from ..resource.verifier import TokenVerifier
from ..smart.policy import Decision
from .access import Access, AuthorizeToken, TokenContext, authenticate, context_from_claims
from .app import read_body
from .errors import FhirError

__all__ = ["make_gateway_app", "verifier_authorizer"]

log = logging.getLogger("ostiary.fhir.gateway")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
# RFC 9110 §7.6.1: connection-specific fields never cross a proxy; the caller's credential never does either
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "trailers", "transfer-encoding", "upgrade", "proxy-connection"})
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "authorization", "content-length"}
# they would add resources the check never saw (other types, other patients)
_UNCHECKABLE = ("_include", "_revinclude", "_contained", "_has")


def _context(principal: Principal) -> TokenContext:
    context = context_from_claims(principal.claims)
    return TokenContext(" ".join(sorted(principal.scopes)), context.patient, context.fhir_user, principal.client_id)


def verifier_authorizer(verifier: TokenVerifier) -> AuthorizeToken:
    """An ``authorize_token`` over a TokenVerifier: the ``patient`` and ``fhirUser`` claims give the context."""

    async def authorize(token: str) -> TokenContext:
        return _context(await verifier.averify(token))  # GuardErrors become 401 / 503 OperationOutcomes

    return authorize


def _headers(source: Mapping[str, str], drop: frozenset[str]) -> dict[str, str]:
    named = {v.strip().lower() for v in source.get("connection", "").split(",")}  # RFC 9110 §7.6.1
    return {k: v for k, v in source.items() if k.lower() not in drop and k.lower() not in named}


def _narrowing(resource_type: str, decision: Decision) -> list[tuple[str, str]]:
    """The parameters that confine a search to what the decision allows."""
    extra: list[tuple[str, str]] = []
    if decision.compartment is not None:
        extra.append(("_id" if resource_type == "Patient" else "patient", decision.compartment))
    filters = decision.required_filters
    if len(filters) == 1:
        extra.extend(filters[0])
    elif filters:  # one of several restrictions: expressible only as alternatives of one parameter
        names = {name for query in filters for name, _ in query}
        if len(names) != 1 or any(len(q) != 1 for q in filters):
            raise FhirError(403, "the scopes' restrictions cannot be expressed as one search; search for one of them")
        extra.append((names.pop(), ",".join(q[0][1] for q in filters)))
    return extra


class _Gateway:
    def __init__(self, upstream: str, authorize: AuthorizeToken, upstream_token: str | None,
                 http: httpx.AsyncClient, realm: str) -> None:
        self.upstream, self.authorize, self.http, self.realm = upstream.rstrip("/"), authorize, http, realm
        self.credential = {"Authorization": f"Bearer {upstream_token}"} if upstream_token else {}

    async def forward(self, request: Request, path: str, *, query: str | None = None, body: bytes = b"",
                      extra_headers: Mapping[str, str] | None = None) -> Response:
        """Send the request upstream and stream the answer back as it arrives."""
        headers = {**_headers(request.headers, _NOT_FORWARDED), **self.credential, **(extra_headers or {})}
        raw_query = request.url.query if query is None else query
        url = f"{self.upstream}/{path}" + (f"?{raw_query}" if raw_query else "")
        upstream = await self.http.send(self.http.build_request(request.method, url, headers=headers,
                                                                content=body or None), stream=True)
        headers = _headers(upstream.headers, _HOP_BY_HOP)
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=headers,
                                 background=BackgroundTask(upstream.aclose))

    async def current(self, resource_type: str, resource_id: str) -> tuple[httpx.Response, dict[str, Any] | None]:
        """The upstream's answer to a read, and the resource if it is one of ``resource_type``."""
        answer = await self.http.get(f"{self.upstream}/{resource_type}/{resource_id}",
                                     headers={"Accept": "application/fhir+json", **self.credential})
        if answer.status_code != 200:
            return answer, None
        try:
            resource = orjson.loads(answer.content)
        except orjson.JSONDecodeError:
            raise FhirError(502, "the upstream server answered with something other than FHIR JSON") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise FhirError(502, f"the upstream server did not answer with a {resource_type}")
        return answer, resource

    @staticmethod
    def buffered(answer: httpx.Response) -> Response:
        headers = _headers(answer.headers, _HOP_BY_HOP | {"content-length", "content-encoding"})
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    async def search(self, request: Request, access: Access, resource_type: str, body: bytes | None) -> Response:
        access.require_type("s", resource_type)
        items: Sequence[tuple[str, str]] = parse_qsl(
            request.url.query if body is None else body.decode("utf-8", "replace"), keep_blank_values=True)
        if any(name.split(":")[0] in _UNCHECKABLE for name, _ in items):
            raise FhirError(403, "_include, _revinclude, _contained and _has are not allowed through the gateway")
        names = [k for k, _ in items]
        decision = access.check("s", resource_type, search_params={k: v for k, v in items if names.count(k) == 1})
        extra = _narrowing(resource_type, decision)
        # strict handling: an upstream must refuse, not ignore, a narrowing parameter it does not know
        strict = {"Prefer": "handling=strict"} if extra else {}
        if body is None:
            query = "&".join(p for p in (request.url.query, urlencode(extra)) if p)
            return await self.forward(request, resource_type, query=query, extra_headers=strict)
        form = "&".join(p for p in (body.decode("utf-8", "replace"), urlencode(extra)) if p).encode()
        return await self.forward(request, f"{resource_type}/_search", body=form, extra_headers=strict)

    async def instance(self, request: Request, access: Access, resource_type: str, resource_id: str) -> Response:
        letter = {"GET": "r", "PUT": "u", "DELETE": "d"}[request.method]
        access.require_type(letter, resource_type)
        new: dict[str, Any] | None = None
        body = b""
        if letter == "u":
            body = await read_body(request)
            new = _resource(body, resource_type)
        answer, stored = await self.current(resource_type, resource_id)
        if stored is not None:
            access.check(letter, resource_type, resource=stored)
        elif letter != "u" or answer.status_code != 404:
            return self.buffered(answer)  # not there (or the upstream refused): say what it said
        if letter == "r":
            return self.buffered(answer)
        if new is not None:
            access.check("u", resource_type, resource=new)
            if stored is None:  # update as create
                access.check("c", resource_type, resource=new)
        return await self.forward(request, f"{resource_type}/{resource_id}", body=body)

    async def create(self, request: Request, access: Access, resource_type: str) -> Response:
        access.require_type("c", resource_type)
        body = await read_body(request)
        access.check("c", resource_type, resource=_resource(body, resource_type))
        return await self.forward(request, resource_type, body=body)

    async def route(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        if parts == ["metadata"] and method in ("GET", "HEAD"):
            return await self.forward(request, "metadata")  # the CapabilityStatement is public
        access = Access(await authenticate(self.realm, request.headers.getlist("authorization"), self.authorize))
        if not parts or len(parts) > 2 or not _TYPE.fullmatch(parts[0]):
            raise FhirError(403, "the gateway passes only type and instance interactions it can check")
        resource_type = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return await self.search(request, access, resource_type, None)
            if method == "POST":
                return await self.create(request, access, resource_type)
            raise FhirError(405, f"{method} is not supported here", headers={"Allow": "GET, POST"})
        if parts[1] == "_search":
            if method != "POST":
                raise FhirError(405, f"{method} is not supported here", headers={"Allow": "POST"})
            return await self.search(request, access, resource_type, await read_body(request))
        if not _ID.fullmatch(parts[1]):
            raise FhirError(404, "malformed resource id")
        if method not in ("GET", "PUT", "DELETE"):
            raise FhirError(405, f"{method} is not supported here", headers={"Allow": "GET, PUT, DELETE"})
        return await self.instance(request, access, resource_type, parts[1])


def _resource(body: bytes, resource_type: str) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FhirError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise FhirError(400, f"the body must be a {resource_type} resource")
    return data


def make_gateway_app(
    upstream: str,
    authorize_token: AuthorizeToken,
    *,
    upstream_token: str | None = None,
    realm: str = "fhir",
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The gateway in front of the FHIR server at ``upstream`` (its base URL)."""
    http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)
    gateway = _Gateway(upstream, authorize_token, upstream_token, http, realm)

    async def endpoint(request: Request) -> Response:
        parts = [p for p in request.path_params.get("path", "").split("/") if p]
        try:
            return await gateway.route(request, parts)
        except FhirError as exc:
            return exc.response()
        except httpx.HTTPError as exc:
            log.warning("upstream FHIR server failed: %s", type(exc).__name__)
            return FhirError(502, "the upstream FHIR server cannot be reached").response()
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("gateway request failed (incident %s)", incident)
            return FhirError(500, f"internal error (incident {incident})").response()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)], lifespan=lifespan)
