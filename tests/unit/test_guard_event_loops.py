"""Issue 9 item 4: the guard works from any event loop and from threads.

FastAPI documents testing with ``TestClient(app)`` used without ``with``: every request then runs
in a new event loop. A guard that kept one ``httpx.AsyncClient`` (or ``asyncio.Lock``) answered
500 ``RuntimeError: Event loop is closed`` as soon as it had to refetch the JWKS or introspect.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from ostiary.client import ClientCredentials, ClientSecretBasic, Secret
from ostiary.keys import SigningKey
from ostiary.resource import Guard, Introspection, Principal, TokenVerifier
from ostiary.resource.starlette import require_scopes
from tests.unit._guard_helpers import AUDIENCE, IssuerServer, access_token

FIRST = SigningKey.generate("ES256")


@pytest.fixture
def issuer() -> Iterator[IssuerServer]:
    server = IssuerServer([FIRST])
    # Keep-alive, as real issuers do: the guard's pooled connection then belongs to the loop that opened it.
    server.server.RequestHandlerClass.protocol_version = "HTTP/1.1"  # type: ignore[attr-defined]
    with server:
        yield server


def _app(guard: Guard) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items(principal: Principal = Depends(require_scopes("read", guard=guard))) -> dict[str, str]:
        return {"sub": principal.subject or ""}

    return app


def test_issue9_4_jwks_refetch_under_testclient_without_with(issuer: IssuerServer) -> None:
    guard = Guard(TokenVerifier(issuer.issuer, AUDIENCE, min_refetch_interval=0))
    client = TestClient(_app(guard))  # FastAPI's documented pattern: no `with`, a new loop per request
    ok = client.get("/items", headers={"Authorization": f"Bearer {access_token(FIRST, issuer.issuer)}"})
    assert ok.status_code == 200, ok.text
    rotated = SigningKey.generate("ES256")
    issuer.keys.append(rotated)  # a new kid: the guard refetches the JWKS, on another loop
    for _ in range(3):
        r = client.get("/items", headers={"Authorization": f"Bearer {access_token(rotated, issuer.issuer)}"})
        assert r.status_code == 200, r.text
    assert issuer.hits["/jwks"] >= 2


def test_issue9_4_introspection_under_testclient_without_with(issuer: IssuerServer) -> None:
    rs = Introspection(ClientSecretBasic("api", Secret("api-secret")), max_cache_ttl=0, negative_cache_ttl=0)
    guard = Guard(TokenVerifier(issuer.issuer, AUDIENCE, introspection=rs))
    client = TestClient(_app(guard))
    for n in range(3):
        issuer.introspection[f"opaque-{n}"] = {"active": True, "sub": f"user-{n}", "scope": "read",
                                               "aud": AUDIENCE, "iss": issuer.issuer}
        r = client.get("/items", headers={"Authorization": f"Bearer opaque-{n}"})
        assert r.status_code == 200 and r.json() == {"sub": f"user-{n}"}, r.text
    assert issuer.hits["/introspect"] == 3


def test_issue9_4_guard_from_several_threads_each_with_its_own_loop(issuer: IssuerServer) -> None:
    rs = Introspection(ClientSecretBasic("api", Secret("api-secret")), max_cache_ttl=0, negative_cache_ttl=0)
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, introspection=rs)
    issuer.introspection["shared"] = {"active": True, "sub": "user-t", "scope": "read", "aud": AUDIENCE}
    jwt_token = access_token(FIRST, issuer.issuer)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        async def twice() -> None:
            for _ in range(2):
                results.append((await verifier.averify("shared")).subject or "")
                results.append((await verifier.averify(jwt_token)).subject or "")

        try:
            asyncio.run(twice())
        except BaseException as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(set(results)) == ["user-1", "user-t"] and len(results) == 16


def test_issue9_4_token_source_across_event_loops(issuer: IssuerServer) -> None:
    """The client toolkit's token source, shared by code that runs several loops one after another."""
    source = ClientCredentials(ClientSecretBasic("svc", Secret("svc-secret")), token_url=issuer.issuer + "/token",
                               refresh_ratio=0.0)  # always refresh: every call makes a request
    for _ in range(2):
        with pytest.raises(Exception) as info:  # the fake issuer has no token endpoint: a clean TokenError
            asyncio.run(source.aget_token())
        assert "Event loop is closed" not in str(info.value)
        assert type(info.value).__name__ == "TokenError"
