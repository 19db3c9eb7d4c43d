"""The FHIR gateway: SMART enforcement in front of any FHIR server.

Each request is checked with ``smart.policy`` exactly as the built-in API checks it; reads, updates
and deletes first fetch the resource from the upstream to check its compartment and restrictions;
searches are narrowed by adding ``patient=`` (or ``_id=``) and the scope's restriction parameters.
The gateway forwards only what it checked (``forwarding``: allow-listed headers, parameters parsed
once and re-encoded) and returns only what it checked: answers are read up to a size cap and every
resource in them must pass the same policy (larger answers are refused). Only type-level and
instance-level interactions pass: anything the gateway cannot check is refused.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..outbound import trusted_client
from ..resource.verifier import TokenVerifier
from ..smart.policy import Decision
from .access import Access, AuthorizeToken, authenticate
from .app import read_body
from .cors import FhirCors
from .errors import FhirError
from .forwarding import (
    MAX_RESPONSE_BYTES,
    Answer,
    checked,
    parameters,
    read_answer,
    search_form,
    unchecked,
    upstream_headers,
)
from .smart_gateway import SmartDiscovery, entitled_authorizer, require_named_patient, rewrite_links

__all__ = ["make_gateway_app", "verifier_authorizer"]

log = logging.getLogger("ostiary.fhir.gateway")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/fhir+json"
# they would add resources the check never saw (other types, other patients)
_UNCHECKABLE = ("_include", "_revinclude", "_contained", "_has")


def verifier_authorizer(verifier: TokenVerifier) -> AuthorizeToken:
    """An ``authorize_token`` over a TokenVerifier: the ``patient`` and ``fhirUser`` claims give the context,
    and the user's patients (for user/ scopes) come from a signed claim or introspection."""
    return entitled_authorizer(verifier)


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
                 http: httpx.AsyncClient, realm: str, max_response_bytes: int, public_url: str,
                 discovery: SmartDiscovery | None) -> None:
        self.upstream, self.authorize, self.http, self.realm = upstream.rstrip("/"), authorize, http, realm
        self.cap = max_response_bytes
        self.public_url, self.discovery = public_url.rstrip("/"), discovery
        self.credential = {"Authorization": f"Bearer {upstream_token}"} if upstream_token else {}

    async def fetch(self, method: str, path: str, access: Access | None, headers: Mapping[str, str], *,
                    params: Sequence[tuple[str, str]] = (), body: bytes | None = None) -> Answer:
        """One upstream request, its answer read up to the cap."""
        url = f"{self.upstream}/{path}" + (f"?{urlencode(params)}" if params else "")
        async with self.http.stream(method, url, headers=headers, content=body) as answer:
            return await read_answer(answer, self.cap, access)

    async def send(self, request: Request, access: Access, interaction: str, resource_type: str, path: str, *,
                   params: Sequence[tuple[str, str]] = (), body: bytes | None = None,
                   content_type: str | None = None) -> Response:
        """Forward a checked search or write; only what the answer check lets through comes back."""
        headers = upstream_headers(request.headers, self.credential, content_type)
        answer = await self.fetch(request.method, path, access, headers, params=params, body=body)
        response = checked(answer, access, interaction, resource_type)
        if interaction == "s" and response.status_code == 200:  # paging links point at the gateway
            return answer.response(rewrite_links(bytes(response.body), self.upstream, self.public_url))
        return response

    async def current(self, resource_type: str, resource_id: str, access: Access,
                      caller: Request | None = None) -> tuple[Answer, dict[str, Any] | None]:
        """The upstream's answer to a read, and the resource if it is the one asked for."""
        headers = (upstream_headers(caller.headers, self.credential) if caller is not None
                   else {"Accept": "application/fhir+json", **self.credential})
        answer = await self.fetch("GET", f"{resource_type}/{resource_id}", access, headers)
        if answer.status != 200:
            return answer, None
        if answer.resource_type != resource_type or answer.data.get("id") != resource_id:
            raise FhirError(502, f"the upstream server did not answer with {resource_type}/{resource_id}")
        return answer, answer.data

    async def search(self, request: Request, access: Access, resource_type: str, body: bytes | None) -> Response:
        access.require_type("s", resource_type)
        items = parameters(request.url.query)
        if body is not None:  # FHIR R4 search: parameters may come in the URL and the body; all are checked
            items += search_form(request.headers.get("content-type", ""), body)
        if any(name.split(":")[0] in _UNCHECKABLE for name, _ in items):
            raise FhirError(403, "_include, _revinclude, _contained and _has are not allowed through the gateway")
        names = [k for k, _ in items]
        decision = access.check("s", resource_type, search_params={k: v for k, v in items if names.count(k) == 1})
        require_named_patient(access, decision, resource_type, items)
        checked_items = [*items, *_narrowing(resource_type, decision)]
        if body is None:
            return await self.send(request, access, "s", resource_type, resource_type, params=checked_items)
        return await self.send(request, access, "s", resource_type, f"{resource_type}/_search",
                               body=urlencode(checked_items).encode(), content_type=_FORM)

    async def instance(self, request: Request, access: Access, resource_type: str, resource_id: str) -> Response:
        letter = {"GET": "r", "PUT": "u", "DELETE": "d"}[request.method]
        access.require_type(letter, resource_type)
        new: dict[str, Any] | None = None
        body = b""
        if letter == "u":
            body = await read_body(request)
            new = _resource(body, resource_type)
        answer, stored = await self.current(resource_type, resource_id, access, request if letter == "r" else None)
        if stored is not None:
            access.check(letter, resource_type, resource=stored)
        elif letter != "u" or answer.status != 404:
            response = unchecked(answer, access)  # not there (or the upstream refused): say what it said
            if response is None:
                raise FhirError(502, f"the upstream server did not answer with {resource_type}/{resource_id}")
            return response
        if letter == "r":
            return answer.response()
        if new is not None:
            access.check("u", resource_type, resource=new)
            if stored is None:  # update as create
                access.check("c", resource_type, resource=new)
        return await self.send(request, access, letter, resource_type, f"{resource_type}/{resource_id}",
                               body=body or None, content_type=_JSON if body else None)

    async def create(self, request: Request, access: Access, resource_type: str) -> Response:
        access.require_type("c", resource_type)
        body = await read_body(request)
        access.check("c", resource_type, resource=_resource(body, resource_type))
        return await self.send(request, access, "c", resource_type, resource_type, body=body, content_type=_JSON)

    async def metadata(self) -> Response:
        """The CapabilityStatement is public; nothing else passes this way."""
        answer = await self.fetch("GET", "metadata", None, {"Accept": "application/fhir+json"})
        response = unchecked(answer, None)
        if response is not None:
            return response
        if answer.resource_type != "CapabilityStatement":
            raise FhirError(502, "the upstream metadata is not a CapabilityStatement")
        if self.discovery is not None:  # SMART: the issuer's oauth-uris, so that apps find where to authorize
            return answer.response(orjson.dumps(await self.discovery.capability(answer.body)))
        return answer.response()

    async def route(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        if parts == ["metadata"] and method in ("GET", "HEAD"):
            return await self.metadata()
        if parts == [".well-known", "smart-configuration"] and method in ("GET", "HEAD") and self.discovery:
            return Response(orjson.dumps(await self.discovery.configuration()), media_type="application/json",
                            headers={"Cache-Control": "public, max-age=300"})
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
        if not _ID.fullmatch(parts[1]) or not parts[1].strip("."):  # "." and ".." are dot segments, not ids
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
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    transport: httpx.AsyncBaseTransport | None = None,
    cors_origins: Sequence[str] = (),
    issuer: str | None = None,
    public_url: str | None = None,
) -> Starlette:
    """The gateway in front of the FHIR server at ``upstream`` (its base URL, configured: a trusted URL).

    ``cors_origins``: browser apps' origins allowed CORS (fhir/cors.py); `/metadata` answers any origin.
    With ``issuer``, it serves the issuer's SMART configuration and names it in /metadata (SMART apps can
    use it); ``public_url`` is its own base URL, where paging links point (default: ``realm``).
    """
    http = trusted_client(timeout=timeout, transport=transport)
    discovery = SmartDiscovery(issuer, http) if issuer else None
    gateway = _Gateway(upstream, authorize_token, upstream_token, http, realm, max_response_bytes,
                       public_url or realm, discovery)

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

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)], lifespan=lifespan)
    app.add_middleware(FhirCors, origins=cors_origins)
    return app
