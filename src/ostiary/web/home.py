"""The start page at `/`: what is running here, and where to go next (not a JSON 404)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .kinds import KindRoute, page_route
from .render import page

__all__ = ["home_routes"]


async def home(request: Request) -> Response:
    settings = request.app.state.settings
    return page(request, "home.html", {
        "issuer": settings.issuer, "demo": settings.demo_enabled,
        "fhir_base": settings.fhir_base_url if settings.smart.enabled else None,
    })


def home_routes() -> list[KindRoute]:
    return [page_route("/", home, methods=["GET"])]
