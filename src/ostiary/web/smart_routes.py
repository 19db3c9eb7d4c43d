"""SMART App Launch routes: smart-configuration, the EHR launch API, the patient picker, the EHR launcher."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import InsufficientScope, InvalidRequest, InvalidToken, NotFound
from ..server.audit import audit
from ..smart.configuration import smart_configuration
from ..smart.launch import parse_launch_request, verify_context
from .context import provider_of
from .errors import json_response, parse_json_body
from .kinds import KindRoute, api_route
from .launcher import launcher_routes
from .session_routes import bearer_token

__all__ = ["LAUNCH_SCOPE", "smart_routes"]

LAUNCH_SCOPE = "ehr:launch"  # the scope an EHR's client needs to create launch contexts


async def configuration(request: Request) -> Response:
    return json_response(smart_configuration(provider_of(request).metadata),
                         headers={"Cache-Control": "public, max-age=300"})


async def create_launch(request: Request) -> Response:
    """POST /smart/launch: an EHR (bearer token with scope ehr:launch) creates a launch value for one app.

    The token's `aud` must be this issuer (the default audience of client_credentials tokens) or this
    endpoint's URL; the launch must name a registered `client_id` and data of this FHIR base.
    """
    p = provider_of(request)
    if p.launches is None or p.directory is None:
        raise NotFound("SMART is disabled")
    found = await p.inspector.find(await bearer_token(request))
    if found is None or not found.active or found.kind != "access_token":
        raise InvalidToken("the access token is invalid, expired or revoked")
    aud = found.claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    issuer = p.settings.issuer
    if not {issuer, issuer + "/smart/launch"} & set(audiences):
        raise InvalidToken("the access token is not meant for this launch endpoint (aud)")
    if LAUNCH_SCOPE not in str(found.claims.get("scope", "")).split():
        raise InsufficientScope(f"creating a launch needs the {LAUNCH_SCOPE} scope")
    context = parse_launch_request(await parse_json_body(request, InvalidRequest))
    if await p.cached_clients.get(str(context.client_id)) is None:
        raise InvalidRequest("client_id is not a registered app")
    await verify_context(context, p.directory)
    value = await p.launches.create(context)
    audit("launch_created", client_id=found.claims.get("client_id"), app=context.client_id)
    return json_response({"launch": value, "expires_in": p.settings.smart.launch_lifetime,
                          "iss": p.settings.fhir_base_url}, status=201, headers={"Cache-Control": "no-store"})


def smart_routes(fhir_path: str) -> list[KindRoute]:
    return [
        api_route("/.well-known/smart-configuration", configuration, methods=["GET"]),
        api_route(fhir_path + "/.well-known/smart-configuration", configuration, methods=["GET"]),
        api_route("/smart/launch", create_launch, methods=["POST"]),
        *launcher_routes(),
    ]
