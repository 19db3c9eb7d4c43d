"""RFC 6750 responses from the ASGI middleware, the Starlette/FastAPI dependency and the Flask decorator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from flask import Flask, g
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ostiary.keys import SigningKey
from ostiary.resource import ClaimPermissions, Guard, Principal, TokenVerifier
from ostiary.resource.asgi import BearerMiddleware
from ostiary.resource.flask import require_token
from ostiary.resource.starlette import require_scopes
from tests.unit._guard_helpers import AUDIENCE, IssuerServer, access_token, free_port

KEY = SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def issuer() -> Iterator[IssuerServer]:
    with IssuerServer([KEY]) as server:
        yield server


@pytest.fixture(scope="module")
def guard(issuer: IssuerServer) -> Guard:
    return Guard(TokenVerifier(issuer.issuer, AUDIENCE, timeout=0.5), realm="example")


def token(issuer: IssuerServer, scope: str = "read", **claims: object) -> str:
    return access_token(KEY, issuer.issuer, scope=scope, **claims)


# -- ASGI middleware (Starlette app) --------------------------------------------------------
def starlette_app(guard: Guard) -> BearerMiddleware:
    async def whoami(request: Request) -> JSONResponse:
        principal: Principal = request.state.principal
        return JSONResponse({"sub": principal.subject, "scopes": sorted(principal.scopes)})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/whoami", whoami), Route("/health", health)])
    return BearerMiddleware(app, guard, exempt={"/health"})


@pytest.fixture
def asgi_client(guard: Guard) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=starlette_app(guard)), base_url="http://api")


async def test_rfc6750_2_1_valid_token_reaches_handler_with_principal(asgi_client: httpx.AsyncClient, issuer):
    r = await asgi_client.get("/whoami", headers={"Authorization": f"Bearer {token(issuer)}"})
    assert r.status_code == 200 and r.json() == {"sub": "user-1", "scopes": ["read"]}


async def test_rfc6750_3_1_missing_token_is_401_without_error_code(asgi_client: httpx.AsyncClient):
    r = await asgi_client.get("/whoami")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="example"'


async def test_rfc6750_3_1_invalid_token_is_401_with_error(asgi_client: httpx.AsyncClient, issuer):
    r = await asgi_client.get("/whoami", headers={"Authorization": f"Bearer {token(issuer, exp=1000, iat=900)}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        'Bearer realm="example", error="invalid_token", error_description="token has expired"'
    )
    assert r.json() == {"error": "invalid_token", "error_description": "token has expired"}


async def test_rfc6750_3_1_token_in_header_and_query_is_400(asgi_client: httpx.AsyncClient, issuer):
    t = token(issuer)
    r = await asgi_client.get(f"/whoami?access_token={t}", headers={"Authorization": f"Bearer {t}"})
    assert r.status_code == 400
    assert 'error="invalid_request"' in r.headers["www-authenticate"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer ä"])
async def test_rfc6750_2_1_malformed_authorization_header_is_400(asgi_client: httpx.AsyncClient, header: str):
    r = await asgi_client.get("/whoami", headers={"Authorization": header.encode("utf-8")})
    assert r.status_code == 400
    assert 'error="invalid_request"' in r.headers["www-authenticate"]


async def test_other_auth_scheme_is_treated_as_no_token(asgi_client: httpx.AsyncClient):
    r = await asgi_client.get("/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="example"'


async def test_oauth21_query_token_is_refused_by_default(asgi_client: httpx.AsyncClient, issuer):
    r = await asgi_client.get(f"/whoami?access_token={token(issuer)}")
    assert r.status_code == 400


async def test_exempt_path_needs_no_token(asgi_client: httpx.AsyncClient):
    assert (await asgi_client.get("/health")).status_code == 200


async def test_issuer_down_is_503_quickly():
    issuer = f"http://127.0.0.1:{free_port()}"
    guard = Guard(TokenVerifier(issuer, AUDIENCE, jwks_uri=f"{issuer}/jwks", timeout=0.3))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=starlette_app(guard)), base_url="http://api")
    r = await client.get("/whoami", headers={"Authorization": f"Bearer {access_token(KEY, issuer)}"})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_issuer_down_can_be_401_instead():
    issuer = f"http://127.0.0.1:{free_port()}"
    verifier = TokenVerifier(issuer, AUDIENCE, jwks_uri=f"{issuer}/jwks", timeout=0.3)
    guard = Guard(verifier, unavailable_status=401)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=starlette_app(guard)), base_url="http://api")
    r = await client.get("/whoami", headers={"Authorization": f"Bearer {access_token(KEY, issuer)}"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


# -- FastAPI dependency -------------------------------------------------------------------------
@pytest.fixture
def fastapi_client(guard: Guard) -> httpx.AsyncClient:
    app = FastAPI()

    @app.get("/items")
    async def items(principal: Principal = Depends(require_scopes("items:read", guard=guard))) -> dict[str, str]:
        return {"sub": principal.subject or ""}

    @app.delete("/items")
    async def delete(principal: Principal = Depends(require_scopes("items:write", guard=guard))) -> dict[str, str]:
        return {"deleted": "yes"}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_fastapi_dependency_returns_principal(fastapi_client: httpx.AsyncClient, issuer):
    r = await fastapi_client.get("/items", headers={"Authorization": f"Bearer {token(issuer, 'items:read')}"})
    assert r.status_code == 200 and r.json() == {"sub": "user-1"}


async def test_rfc6750_3_1_insufficient_scope_is_403(fastapi_client: httpx.AsyncClient, issuer):
    r = await fastapi_client.delete("/items", headers={"Authorization": f"Bearer {token(issuer, 'items:read')}"})
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="items:write"' in challenge


async def test_fastapi_missing_token_is_401_without_error(fastapi_client: httpx.AsyncClient):
    r = await fastapi_client.get("/items")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="example"'


# -- Flask decorator --------------------------------------------------------------------------
@pytest.fixture
def flask_app(guard: Guard) -> Flask:
    app = Flask(__name__)

    @app.get("/notes")
    @require_token(guard, "notes:read")
    def notes() -> dict[str, str]:
        return {"sub": g.principal.subject}

    @app.post("/notes")
    @require_token(guard, "notes:write")
    def add_note() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_flask_valid_token(flask_app: Flask, issuer):
    r = flask_app.test_client().get("/notes", headers={"Authorization": f"Bearer {token(issuer, 'notes:read')}"})
    assert r.status_code == 200 and r.get_json() == {"sub": "user-1"}


def test_flask_rfc6750_3_1_missing_token(flask_app: Flask):
    r = flask_app.test_client().get("/notes")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="example"'


def test_flask_rfc6750_3_1_insufficient_scope(flask_app: Flask, issuer):
    r = flask_app.test_client().post("/notes", headers={"Authorization": f"Bearer {token(issuer, 'notes:read')}"})
    assert r.status_code == 403 and 'scope="notes:write"' in r.headers["WWW-Authenticate"]


def test_flask_rfc6750_3_1_header_and_body_token_is_400(flask_app: Flask, issuer):
    t = token(issuer, "notes:write")
    r = flask_app.test_client().post(
        "/notes", headers={"Authorization": f"Bearer {t}"}, data={"access_token": t}
    )
    assert r.status_code == 400 and 'error="invalid_request"' in r.headers["WWW-Authenticate"]


def test_flask_tampered_token_is_401(flask_app: Flask, issuer):
    t = token(issuer, "notes:read")
    r = flask_app.test_client().get("/notes", headers={"Authorization": f"Bearer {t[:-3]}abc"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]


# -- permissions ------------------------------------------------------------------------------
def test_default_policy_maps_scopes_one_to_one(guard: Guard, issuer):
    principal = guard.authenticate([f"Bearer {token(issuer, 'a b')}"])
    assert principal.permissions == {"a", "b"}


def test_claim_policy_maps_roles_to_operations(issuer):
    policy = ClaimPermissions({"admin": {"users:read", "users:write"}, "viewer": {"users:read"}},
                              claim="realm_access.roles")
    guard = Guard(TokenVerifier(issuer.issuer, AUDIENCE, timeout=0.5), policy=policy)
    principal = guard.authenticate([f"Bearer {token(issuer, 'openid', realm_access={'roles': ['viewer']})}"])
    assert principal.permissions == {"users:read"}
    Guard.require(principal, permissions=["users:read"])
    with pytest.raises(Exception, match="users:write"):
        Guard.require(principal, permissions=["users:write"])


async def test_fastapi_dependency_checks_permissions(issuer):
    guard = Guard(TokenVerifier(issuer.issuer, AUDIENCE, timeout=0.5),
                  policy=ClaimPermissions({"admin": {"users:write"}}))
    app = FastAPI()

    writers = require_scopes(guard=guard, permissions=["users:write"])

    @app.post("/users")
    async def create(p: Principal = Depends(writers)) -> dict[str, str]:
        return {"ok": "yes"}

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    ok = await client.post("/users", headers={"Authorization": f"Bearer {token(issuer, roles=['admin'])}"})
    no = await client.post("/users", headers={"Authorization": f"Bearer {token(issuer, roles=['viewer'])}"})
    assert ok.status_code == 200 and no.status_code == 403
