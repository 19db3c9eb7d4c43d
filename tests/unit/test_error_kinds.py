"""Every route declares the kind of answer it gives (web/kinds.py), so the one error renderer
(web/errors.py) answers its errors as a page, JSON or an OperationOutcome: no path-prefix list decides."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Mount, Route

from ostiary.config import PortalSettings, SmartSettings
from ostiary.web.app import make_app
from ostiary.web.kinds import KindMount, KindRoute, kind_of
from tests.conftest import settings_for


def _every_feature(tmp_path: Any) -> Any:
    settings = settings_for(f"sqlite:///{tmp_path / 'o.db'}", demo=True, smart=SmartSettings(enabled=True),
                            portal=PortalSettings(gateway_config=str(tmp_path / "gateway.toml")))
    return make_app(settings, run_bootstrap=False)


def test_every_route_is_registered_with_a_declared_kind(tmp_path):
    app = _every_feature(tmp_path)
    undeclared = [getattr(r, "path", repr(r)) for r in app.router.routes
                  if not isinstance(r, KindRoute | KindMount) or r.kind not in ("page", "api", "fhir", "static")]
    assert not undeclared, f"register these with page_route / api_route / mount (web/kinds.py): {undeclared}"
    assert all(isinstance(r, Route | Mount) for r in app.router.routes)


def _scope(app: Any, path: str, method: str = "GET", accept: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "path": path, "root_path": "", "method": method, "app": app,
            "headers": [(b"accept", accept)] if accept else []}


@pytest.mark.parametrize(("path", "kind"), [
    ("/authorize", "page"), ("/interaction/abc", "page"), ("/logout", "page"), ("/account", "page"),
    ("/smart/launcher", "page"), ("/developers", "page"), ("/demo", "page"), ("/", "page"),
    ("/token", "api"), ("/register/abc", "api"), ("/userinfo", "api"), ("/smart/launch", "api"),
    ("/.well-known/openid-configuration", "api"), ("/fhir/Patient", "fhir"), ("/fhir/metadata", "fhir"),
    ("/static/style.css", "static"),
])
def test_the_route_table_says_the_kind(tmp_path, path, kind):
    assert kind_of(_scope(_every_feature(tmp_path), path)) == kind


def test_a_path_no_route_matches_answers_as_the_caller_asked(tmp_path):
    """Starlette's own 404 has no route: a browser (Accept: text/html) gets a page, anything else JSON."""
    app = _every_feature(tmp_path)
    assert kind_of(_scope(app, "/nothing/here", accept=b"text/html,application/xhtml+xml")) == "page"
    assert kind_of(_scope(app, "/nothing/here", accept=b"application/json")) == "api"
    assert kind_of(_scope(app, "/nothing/here")) == "api"


def test_a_wrong_method_keeps_the_kind_of_its_path(tmp_path):
    app = _every_feature(tmp_path)
    assert kind_of(_scope(app, "/account", "DELETE")) == "page"
    assert kind_of(_scope(app, "/token", "GET")) == "api"
