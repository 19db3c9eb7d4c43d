"""Forward-auth (issue item 7): nginx `auth_request` and Caddy `forward_auth` in front of the recording upstream,
asking a real `ostiary gateway`; the configurations are those of docs/gateway.md."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e._edge import CADDY, CADDY_SITE, NGINX_SITE, start_caddy, start_nginx
from tests.e2e._gateway import ROOT, Process, clear_upstream_log, header_values, start_gateway, upstream_log
from tests.e2e.gateway_fixtures import Issuer, issuer, notes_routes, raw_request, upstream

pytestmark = [pytest.mark.e2e]
__all__ = ["issuer", "upstream"]  # fixtures


@pytest.fixture(scope="module")
def gateway(issuer: Issuer, upstream: Process, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    config = notes_routes(issuer.server.issuer, upstream.base_url) + f"""
[[routes]]
path = "/public"
public = true
upstream = "{upstream.base_url}"
"""
    process = start_gateway(tmp_path_factory.mktemp("edge-gateway"), config)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module", params=["nginx", pytest.param("caddy", marks=pytest.mark.skipif(
    CADDY is None, reason="caddy is not installed"))])
def edge(request: pytest.FixtureRequest, gateway: Process, upstream: Process,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    start = start_nginx if request.param == "nginx" else start_caddy
    process = start(tmp_path_factory.mktemp(request.param), gateway, upstream)
    try:
        yield process
    finally:
        process.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_item7_identity_is_the_gateways_and_caller_sent_identity_is_cleared(
        edge: Process, upstream: Process, issuer: Issuer) -> None:
    token = issuer.token(issuer.writer, "notes:read")
    clear_upstream_log(upstream)
    spoofed = [("X-Ostiary-Subject", "admin"), ("X_Ostiary_Subject", "admin"), ("X-OSTIARY-CLIENT-ID", "root"),
               ("X_Ostiary_Scope", "everything"), ("Cookie", "s=1")]
    r = httpx.get(edge.base_url + "/notes/1", headers=[*bearer(token).items(), *spoofed], timeout=10)
    assert r.status_code == 200, r.text
    public = httpx.get(edge.base_url + "/public/x", headers=spoofed, timeout=10)
    assert public.status_code == 200, public.text
    seen, seen_public = upstream_log(upstream)
    assert header_values(seen, "X-Ostiary-Client-Id") == [issuer.writer[0]]
    assert header_values(seen, "X-Ostiary-Subject") == [issuer.writer[0]]
    assert header_values(seen, "X-Ostiary-Scope") == ["notes:read"]
    assert not header_values(seen, "Authorization") and not header_values(seen, "Cookie")
    for name in ("X-Ostiary-Client-Id", "X-Ostiary-Subject", "X-Ostiary-Scope"):  # absent (nginx) or empty (Caddy)
        assert header_values(seen_public, name) in ([], [""]), seen_public["headers"]


def test_item7_refusals_reach_the_client_with_their_status_and_challenge(
        edge: Process, upstream: Process, issuer: Issuer) -> None:
    reader = issuer.token(issuer.reader, "notes:read")
    clear_upstream_log(upstream)
    with httpx.Client(base_url=edge.base_url, timeout=10) as client:
        missing = client.get("/notes/1")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        scope = client.post("/notes/1", headers=bearer(reader), content=b"{}")
        assert scope.status_code == 403 and 'scope="notes:write"' in scope.headers["www-authenticate"]
        assert client.get("/elsewhere", headers=bearer(reader)).status_code == 404
        assert client.delete("/notes/1", headers=bearer(reader)).status_code == 405
    for target in (b"/notes/../admin", b"/notes/%2e%2e/admin", b"/notes/%2fx", b"/notes//x"):
        status, answer = raw_request(edge.port, target, headers=f"Authorization: Bearer {reader}\r\n".encode())
        assert status == 400, answer
    assert upstream_log(upstream) == []


def test_item7_rate_limit_reaches_the_client_as_429_with_retry_after_exactly(
        edge: Process, issuer: Issuer) -> None:
    # one client per proxy, so that each proxy's run starts with a full budget at the shared gateway
    token = issuer.token(issuer.reader if edge.name == "nginx" else issuer.writer, "notes:read")

    def call(_: int) -> httpx.Response:
        return httpx.get(edge.base_url + "/notes/limited/x", headers=bearer(token), timeout=20)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(call, range(50)))
    assert sorted(r.status_code for r in answers) == [200] * 20 + [429] * 30
    refused = next(r for r in answers if r.status_code == 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == '"/notes/limited";q=20;w=60'




def test_item7_docs_show_the_configurations_these_tests_run() -> None:
    doc = (ROOT / "docs" / "gateway.md").read_text()
    assert NGINX_SITE.strip() in doc
    assert CADDY_SITE.format(gateway=8080, upstream=8001).strip() in doc
