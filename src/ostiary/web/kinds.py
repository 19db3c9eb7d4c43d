"""What kind of answer each route gives, declared where the route is registered.

- ``page``: a browser route; errors are HTML pages (and `RedirectError` a redirect to the client).
- ``api``: a protocol endpoint; errors are JSON (RFC 6749 §5.2, RFC 6750 §3, RFC 7591 §3.2.2).
- ``fhir``: the FHIR API; errors are OperationOutcome resources (FHIR R4 http.html).
- ``static``: files; errors are JSON like the API's.

Register routes with `page_route` / `api_route` / `mount`; tests/unit/test_error_kinds.py fails for a
route registered any other way. A path that matches no route (Starlette's own 404) has no declared
kind: the answer follows the `Accept` header (a page for a browser asking for HTML, else JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Scope

__all__ = ["Kind", "KindMount", "KindRoute", "api_route", "kind_of", "mount", "page_route"]

Kind = Literal["page", "api", "fhir", "static"]
KIND_KEY = "ostiary.kind"  # set in the scope by the route the router chose (a mount changes the path after)


class KindRoute(Route):
    """A Starlette route that says which kind of answer it gives."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, kind: Kind, methods: Sequence[str]) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        self.kind: Kind = kind

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return match, ({**child, KIND_KEY: self.kind} if match != Match.NONE else child)


class KindMount(Mount):
    def __init__(self, path: str, app: ASGIApp, *, kind: Kind, name: str | None = None) -> None:
        super().__init__(path, app=app, name=name)
        self.kind: Kind = kind

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return match, ({**child, KIND_KEY: self.kind} if match != Match.NONE else child)


def page_route(path: str, endpoint: Callable[..., Any], *, methods: Sequence[str]) -> KindRoute:
    return KindRoute(path, endpoint, kind="page", methods=methods)


def api_route(path: str, endpoint: Callable[..., Any], *, methods: Sequence[str]) -> KindRoute:
    return KindRoute(path, endpoint, kind="api", methods=methods)


def mount(path: str, app: ASGIApp, *, kind: Kind, name: str | None = None) -> KindMount:
    return KindMount(path, app, kind=kind, name=name)


def _wants_html(scope: Scope) -> bool:
    accept = next((v for k, v in scope.get("headers", ()) if k == b"accept"), b"")
    return b"text/html" in accept.lower()


def kind_of(scope: Scope) -> Kind:
    """The kind of the route this request goes to: the routed one, or (before routing, or none matched)
    the one the route table would choose."""
    routed: Kind | None = scope.get(KIND_KEY)
    if routed is not None:
        return routed
    app = scope.get("app")
    routes: Sequence[BaseRoute] = getattr(getattr(app, "router", None), "routes", ())
    partial: BaseRoute | None = None
    probe = {**scope, "type": "http"}
    for route in routes:
        match, _ = route.matches(probe)
        if match == Match.FULL:
            partial = route
            break
        if match == Match.PARTIAL and partial is None:
            partial = route
    kind: Kind | None = getattr(partial, "kind", None)
    if kind is None:
        return "page" if _wants_html(scope) else "api"
    return kind

