"""Bodies limited while read (RFC 9110 §15.5.14): 413 before reading an oversized Content-Length, and a
streamed body cut at the limit, on every endpoint of the route table."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.routing import Mount, Route

from ostiary.config import HttpSettings, KeySettings
from tests.conftest import start_app

from ._helpers import settings_for

LIMIT = 64 * 1024
CHUNK = 16 * 1024
HUGE = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def small(database_url: str):
    async for r in start_app(settings_for(database_url, http=HttpSettings(max_body_bytes=LIMIT),
                                            keys=KeySettings(generate=("ES256",)))):
        yield r


class Body:
    """A 200 MB body that counts how much of it the server pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"a=" + b"b" * (CHUNK - 2)
        while self.pulled < HUGE:
            self.pulled += len(chunk)
            yield chunk


def _endpoints(app) -> list[tuple[str, str]]:
    """(method, path) for every route, path parameters filled in, preferring a method that takes a body."""
    out = []
    for route in app.routes:
        if isinstance(route, Route):
            methods = route.methods or {"GET"}
            method = next((m for m in ("POST", "PUT", "PATCH") if m in methods), "GET")
            out.append((method, route.path.replace("{", "").replace("}", "")))
        elif isinstance(route, Mount) and route.path != "/static":
            out.append(("POST", route.path + "/Patient"))
    return out


async def test_rfc9110_15_5_14_oversized_content_length_is_413_before_reading(small):
    for method, path in _endpoints(small.app):
        body = Body()
        r = await small.http.request(method, path, content=body,
                                     headers={"content-length": str(HUGE), "content-type": "application/json"})
        assert r.status_code == 413, (method, path, r.status_code)
        assert body.pulled == 0, (method, path)


async def test_rfc9110_15_5_14_streamed_body_is_cut_at_the_limit_on_every_endpoint(small):
    for method, path in _endpoints(small.app):
        body = Body()
        r = await small.http.request(method, path, content=body,
                                     headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code < 500, (method, path, r.status_code, r.text[:200])
        assert body.pulled <= LIMIT + CHUNK, (method, path, body.pulled)


async def test_413_has_each_endpoints_error_format(small, caplog):
    big = b"a=" + b"b" * LIMIT
    form = {"content-type": "application/x-www-form-urlencoded"}
    token = await small.http.post("/token", content=big, headers=form)
    assert token.status_code == 413 and token.json()["error"] == "invalid_request"
    assert token.headers["cache-control"] == "no-store"
    page = await small.http.post("/authorize", content=big, headers=form)
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
    cid, secret = await small.add_client(scope="system/*.cruds", system_scopes_with_secret=True)
    token = (await small.http.post("/token", data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
                                   auth=httpx.BasicAuth(cid, secret or ""))).json()["access_token"]
    fhir = await small.http.post("/fhir/Patient", content=Body(), headers={  # streamed: the FHIR API reads it
        "content-type": "application/fhir+json", "authorization": f"Bearer {token}"})
    assert fhir.status_code == 413 and fhir.json()["resourceType"] == "OperationOutcome"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a refused body is not a bug to log"


async def test_malformed_content_length_is_400(small):
    for value in ("-1", "1e9", "12, 13"):
        r = await small.http.post("/token", content=b"", headers={"content-length": value})
        assert r.status_code == 400, value


async def test_bodies_under_the_limit_still_work(small):
    cid, secret = await small.add_client(scope="api:read")
    r = await small.http.post("/token", data={"grant_type": "client_credentials", "pad": "x" * (LIMIT // 2)},
                              auth=httpx.BasicAuth(cid, secret or ""))
    assert r.status_code == 200, r.text
