"""One error renderer (web/errors.py) for every route, by the kind the route declares (web/kinds.py).

Pages: a readable HTML page naming the standard error code (RFC 6749 §4.1.2.1: with no trusted redirect
URI the user is told, the client is not). APIs: RFC 6749 §5.2 / RFC 6750 §3 JSON. FHIR: OperationOutcome.
A bug is a 500 of the route's kind with a reference, never a stack trace; Starlette's own 404 and 405,
HEAD and OPTIONS answer in the same kinds, with the same security headers as every answer.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ostiary.errors import AccessDenied, RedirectError, RedirectTarget
from tests.conftest import RunningApp, settings_for, start_app

HTML = {"accept": "text/html,application/xhtml+xml"}
SECRET = "secret-internal-detail-xyz"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: rendering, not storage."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def running(database_url: str) -> Any:
    async for r in start_app(settings_for(database_url, demo=True)):
        yield r


def assert_security_headers(r: Any) -> None:
    """docs/security.md: the same headers on every answer, errors included."""
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"


def assert_page(r: Any, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert error in r.text and "<h1" in r.text
    assert "Traceback" not in r.text
    assert_security_headers(r)


def assert_json(r: Any, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["error"] == error and set(body) <= {"error", "error_description"}
    assert "Traceback" not in r.text
    assert_security_headers(r)
    return body


# --- hostile input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/authorize?client_id=a&client_id=b",                # RFC 6749 §3.1: repeated parameter
    "/logout?id_token_hint=not.a.jwt",                   # RP-Initiated Logout §2: a hint that is no ID token
    "/demo/callback?state=forged&code=x",                # the demo client: state mismatch
])
async def test_hostile_input_to_a_page_route_is_a_readable_error_page(running: RunningApp, url: str) -> None:
    assert_page(await running.http.get(url), 400, "invalid_request")


async def test_a_malformed_form_to_a_page_route_is_an_error_page(running: RunningApp) -> None:
    r = await running.http.post("/logout/confirm", content=b"a=%zz&a=1",
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert_page(r, 400, "invalid_request")


async def test_an_oversized_body_to_a_page_route_is_a_413_page(running: RunningApp) -> None:
    big = running.settings.http.max_body_bytes + 1
    r = await running.http.post("/logout/confirm", content=b"a" * big,
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert_page(r, 413, "invalid_request")


async def test_hostile_input_to_an_api_route_is_json(running: RunningApp) -> None:
    assert_json(await running.http.post("/token", content=b"grant_type=a&grant_type=b",
                                        headers={"content-type": "application/x-www-form-urlencoded"}),
                400, "invalid_request")
    r = await running.http.get("/userinfo", headers={"authorization": "Bearer nonsense"})
    assert_json(r, 401, "invalid_token")
    assert r.headers["www-authenticate"].startswith("Bearer ")  # RFC 6750 §3


async def test_an_api_error_asked_for_by_a_browser_is_still_json(running: RunningApp) -> None:
    """The route decides, not the Accept header: a protocol endpoint never answers HTML."""
    assert_json(await running.http.post("/token", data={}, headers=HTML), 400, "invalid_request")


async def test_a_fhir_error_is_an_operation_outcome(running: RunningApp) -> None:
    r = await running.http.get("/fhir/NoSuchType/1", headers={"authorization": "Bearer nonsense"})
    assert r.status_code in (401, 404) and r.json()["resourceType"] == "OperationOutcome"


# --- bugs -------------------------------------------------------------------------------------------

async def _broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET)


async def test_a_bug_in_a_page_route_is_a_500_page_without_a_trace(running: RunningApp, monkeypatch, caplog) -> None:
    monkeypatch.setattr(running.provider.flow, "session", _broken)
    with caplog.at_level(logging.ERROR, "ostiary"):
        r = await running.http.get("/account")
    assert_page(r, 500, "server_error")
    assert SECRET not in r.text and "reference" in r.text
    assert any(SECRET in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)  # logged for the operator


async def test_a_bug_in_an_api_route_is_a_500_json_without_a_trace(running: RunningApp, monkeypatch) -> None:
    monkeypatch.setattr(running.provider.userinfo, "handle", _broken)
    r = await running.http.get("/userinfo", headers={"authorization": "Bearer something"})
    body = assert_json(r, 500, "server_error")
    assert SECRET not in r.text and "reference" in body["error_description"]


async def test_a_bug_under_the_fhir_api_is_a_500_operation_outcome(running: RunningApp, monkeypatch) -> None:
    monkeypatch.setattr(running.provider.inspector, "find", _broken)
    r = await running.http.get("/fhir/Patient", headers={"authorization": "Bearer something"})
    assert r.status_code == 500 and r.json()["resourceType"] == "OperationOutcome"
    assert SECRET not in r.text and "Traceback" not in r.text


# --- RedirectError -----------------------------------------------------------------------------------

def _raising(exc: Exception) -> Any:
    async def raise_it(*args: Any, **kwargs: Any) -> Any:
        raise exc
    return raise_it


async def test_a_redirect_error_goes_back_to_a_client_an_administrator_made(running: RunningApp, monkeypatch) -> None:
    """RFC 6749 §4.1.2.1: the error, state and iss (RFC 9207) at the client's redirect URI."""
    cid, _ = await running.add_client(grant_types=["authorization_code"], response_types=["code"],
                                      redirect_uris=["https://app.example/cb"], token_endpoint_auth_method="none")
    target = RedirectTarget("https://app.example/cb", "query", "s1")
    monkeypatch.setattr(running.provider.flow, "session", _raising(RedirectError(AccessDenied("no"), target, cid)))
    r = await running.http.get("/account")
    assert r.status_code == 303
    where = urlsplit(r.headers["location"])
    query = parse_qs(where.query)
    assert f"{where.scheme}://{where.netloc}{where.path}" == "https://app.example/cb"
    assert query["error"] == ["access_denied"] and query["state"] == ["s1"]
    assert query["iss"] == [running.settings.issuer]
    assert_security_headers(r)


async def test_a_redirect_error_of_an_unknown_client_is_a_page(running: RunningApp, monkeypatch) -> None:
    """RFC 9700 §4.11.2: never redirect for a client nobody vouched for before the user interacted."""
    target = RedirectTarget("https://evil.example/cb", "query", "s1")
    monkeypatch.setattr(running.provider.flow, "session",
                        _raising(RedirectError(AccessDenied("no"), target, "no-such-client")))
    r = await running.http.get("/account")
    assert_page(r, 400, "access_denied")
    assert "evil.example" not in r.headers.get("location", "")


# --- Starlette's own answers, HEAD and OPTIONS ---------------------------------------------------------

async def test_an_unknown_path_is_a_page_for_a_browser_and_json_otherwise(running: RunningApp) -> None:
    assert_page(await running.http.get("/no/such/page", headers=HTML), 404, "not_found")
    assert_json(await running.http.get("/no/such/page"), 404, "not_found")


async def test_a_wrong_method_answers_405_in_the_routes_kind_with_allow(running: RunningApp) -> None:
    page = await running.http.delete("/account")
    assert_page(page, 405, "method_not_allowed")
    assert "GET" in page.headers["allow"]
    api = await running.http.get("/token", headers=HTML)
    assert_json(api, 405, "method_not_allowed")
    assert api.headers["allow"] == "POST"


async def test_head_is_get_without_a_body_and_options_is_405_without_cors(running: RunningApp) -> None:
    head = await running.http.head("/account")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith("text/html")
    missing = await running.http.head("/no/such/page")
    assert missing.status_code == 404 and missing.content == b""
    assert_page(await running.http.options("/account"), 405, "method_not_allowed")
    assert_json(await running.http.options("/token"), 405, "method_not_allowed")
