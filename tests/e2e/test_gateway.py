"""`ostiary gateway` end to end: a real `ostiary serve`, a real gateway and an upstream that records what it gets.

Each test names the item of the gateway issue (docs/gateway.md) and the attack it stops, beside the request
that must still work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ostiary.keys import SigningKey
from tests.conftest import REDIS_URL, needs_redis
from tests.e2e._gateway import Process, clear_upstream_log, header_values, start_gateway, upstream_log
from tests.e2e._server import OSTIARY, clean_env, free_port, poll
from tests.e2e.gateway_fixtures import (
    NOTES,
    OTHER,
    Issuer,
    gateway_http,
    issuer,
    notes_routes,
    raw_request,
    upstream,
)

pytestmark = [pytest.mark.e2e]
__all__ = ["issuer", "upstream"]  # fixtures


def config(issuer: Issuer, upstream: Process, extra: str = "", key_file: str = "") -> str:
    dead = free_port()  # nothing listens there
    internal = f"""
[[routes]]
path = "/signed"
upstream = "{upstream.base_url}"
audience = "{NOTES}"
scopes = {{ GET = "notes:read" }}
internal_jwt = true

[internal_jwt]
issuer = "https://gateway.internal.example"
key_file = "{key_file}"
lifetime = 30
""" if key_file else ""
    return notes_routes(issuer.server.issuer, upstream.base_url) + f"""
[introspection]
client_id = "{issuer.api[0]}"
client_secret = "{issuer.api[1]}"

[[routes]]
path = "/public"
public = true
upstream = "{upstream.base_url}"
rate_limit = {{ requests = 3, per_seconds = 60, key = "client" }}

[[routes]]
path = "/strip"
upstream = "{upstream.base_url}/base"
audience = "{NOTES}"
strip_prefix = true
scopes = {{ "*" = "notes:read" }}
max_body_bytes = 100000
timeout = 1

[[routes]]
path = "/down"
upstream = "http://127.0.0.1:{dead}"
audience = "{NOTES}"
scopes = {{ GET = "notes:read" }}

[[routes]]
path = "/ws"
upstream = "{upstream.base_url}"
audience = "{NOTES}"
scopes = {{ GET = "notes:read" }}
websocket = true
{extra}
{internal}"""


@pytest.fixture(scope="module")
def gateway(issuer: Issuer, upstream: Process, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    workdir = tmp_path_factory.mktemp("gateway")
    key_file = workdir / "internal.pem"
    key_file.write_bytes(SigningKey.generate("ES256").private_pem())
    process = start_gateway(workdir, config(issuer, upstream, key_file=str(key_file)))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def read_token(issuer: Issuer) -> str:
    return issuer.token(issuer.reader, "notes:read")


@pytest.fixture(scope="module")
def write_token(issuer: Issuer) -> str:
    return issuer.token(issuer.writer, "notes:read notes:write")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_item4_identity_reaches_upstream_and_spoofed_identity_in_both_spellings_is_removed(
        gateway: Process, upstream: Process, issuer: Issuer, write_token: str) -> None:
    clear_upstream_log(upstream)
    spoofed = [("X-Ostiary-Subject", "admin"), ("X_Ostiary_Subject", "admin"), ("x-ostiary-client-id", "root"),
               ("X_OSTIARY_SCOPE", "everything"), ("X-Forwarded-For", "10.6.6.6"), ("Forwarded", "for=10.6.6.6"),
               ("X-Forwarded-Host", "evil.example"), ("Cookie", "session=secret"), ("X-Other", "kept")]
    with gateway_http(gateway) as client:
        r = client.get("/notes/1", headers=[*bearer(write_token).items(), *spoofed])
    assert r.status_code == 200, r.text
    assert r.headers["x-upstream"] == "yes" and "x-secret-hop" not in r.headers  # RFC 9110 §7.6.1 both ways
    assert r.headers["x-request-id"]
    assert len(r.headers.get_list("date")) == 1  # the upstream's Date, not a second one
    [seen] = upstream_log(upstream)
    assert seen["path"] == "/notes/1"
    assert header_values(seen, "X-Ostiary-Client-Id") == [issuer.writer[0]]
    assert header_values(seen, "X-Ostiary-Subject") == [issuer.writer[0]]  # client_credentials: sub = client
    assert header_values(seen, "X-Ostiary-Scope") == ["notes:read notes:write"]
    assert header_values(seen, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(seen, "Forwarded") == ["for=127.0.0.1;proto=http;host=\"" + gateway.base_url[7:] + "\""]
    assert header_values(seen, "X-Forwarded-Host") == [gateway.base_url[7:]]
    assert not header_values(seen, "Authorization"), "the caller's token must stay at the edge"
    assert not header_values(seen, "Cookie")
    assert header_values(seen, "X-Other") == ["kept"]


def test_item3_rfc6750_answers_and_nothing_reaches_the_upstream_unchecked(
        gateway: Process, upstream: Process, issuer: Issuer, read_token: str) -> None:
    clear_upstream_log(upstream)
    other_audience = issuer.token(issuer.writer, "notes:read", resource=OTHER)
    with gateway_http(gateway) as client:
        missing = client.get("/notes/1")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="ostiary-gateway"'  # RFC 6750 §3.1: no code
        bad = client.get("/notes/1", headers=bearer("not-a-token"))
        assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
        malformed = client.get("/notes/1", headers={"Authorization": "Bearer a b"})
        assert malformed.status_code == 400 and malformed.json()["error"] == "invalid_request"
        wrong_aud = client.get("/notes/1", headers=bearer(other_audience))
        assert wrong_aud.status_code == 401 and "audience" in wrong_aud.json()["error_description"]
        scope = client.post("/notes", headers=bearer(read_token), content=b"{}")
        assert scope.status_code == 403
        assert 'error="insufficient_scope"' in scope.headers["www-authenticate"]
        assert 'scope="notes:write"' in scope.headers["www-authenticate"]
        in_query = client.get("/notes/1", params={"access_token": read_token})
        assert in_query.status_code == 401
        assert client.get("/notes/1", headers=bearer(read_token)).status_code == 200  # the legitimate request
    assert [r["path"] for r in upstream_log(upstream)] == ["/notes/1"]


@pytest.mark.parametrize("target", [
    b"/notes/../admin", b"/notes/%2e%2e/admin", b"/notes/%2E%2e/admin", b"/notes/.%2e/admin", b"/notes/./1",
    b"/notes/%2fadmin", b"/notes%2F..%2Fadmin", b"/notes//1", b"/notes/a%5cb", b"/notes/a\\b", b"/notes/%00",
    b"/notes/%zz", b"/notes/%c0%ae%c0%ae", b"/notes/a%0a", b"notes/1",
])
def test_item2_traversal_and_ambiguous_paths_are_refused_before_the_upstream(
        gateway: Process, upstream: Process, read_token: str, target: bytes) -> None:
    clear_upstream_log(upstream)
    status, answer = raw_request(gateway.port, target, headers=f"Authorization: Bearer {read_token}\r\n".encode())
    assert status == 400, answer
    assert upstream_log(upstream) == []


def test_item2_segment_boundaries_longest_prefix_and_the_exact_checked_path_forwarded(
        gateway: Process, upstream: Process, read_token: str) -> None:
    clear_upstream_log(upstream)
    with gateway_http(gateway) as client:
        sibling = client.get("/notes-admin", headers=bearer(read_token))
        assert sibling.status_code == 404 and sibling.json()["error"] == "not_found"  # a JSON 404
        assert client.get("/notes/a%20b", params={"q": "1 2"}, headers=bearer(read_token)).status_code == 200
        assert client.get("/notes", headers=bearer(read_token)).status_code == 200
        assert client.get("/strip/x/y", headers=bearer(read_token)).status_code == 200
    status, _ = raw_request(gateway.port, b"/notes/caf%C3%A9", headers=f"Authorization: Bearer {read_token}\r\n"
                            .encode())
    assert status == 200
    seen = upstream_log(upstream)
    assert [(r["path"], r["query"]) for r in seen] == [
        ("/notes/a%20b", "q=1+2"), ("/notes", ""), ("/base/x/y", ""), ("/notes/caf%C3%A9", "")]


def test_item2_methods_not_listed_get_405_head_follows_get_options_only_as_preflight(
        gateway: Process, read_token: str) -> None:
    with gateway_http(gateway) as client:
        delete = client.delete("/notes/1", headers=bearer(read_token))
        assert delete.status_code == 405 and delete.headers["allow"] == "GET, HEAD, POST"
        assert client.head("/notes/1", headers=bearer(read_token)).status_code == 200
        options = client.options("/notes/1")
        assert options.status_code == 405


def test_item5_rate_limit_is_exact_under_50_concurrent_requests(gateway: Process, issuer: Issuer) -> None:
    token = issuer.token(issuer.reader, "notes:read")

    def call(_: int) -> httpx.Response:
        return httpx.get(gateway.base_url + "/notes/limited/x", headers=bearer(token), timeout=20)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(call, range(50)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 20 + [429] * 30
    refused = next(r for r in answers if r.status_code == 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == '"/notes/limited";q=20;w=60'
    assert refused.headers["ratelimit"].startswith('"/notes/limited";r=0;t=')
    assert refused.json()["error"] == "rate_limited"
    other_client = issuer.token(issuer.writer, "notes:read")  # another client has its own budget
    assert httpx.get(gateway.base_url + "/notes/limited/x", headers=bearer(other_client)).status_code == 200


def test_item1_public_route_needs_no_token_and_is_limited_by_address(gateway: Process, upstream: Process) -> None:
    clear_upstream_log(upstream)
    with gateway_http(gateway) as client:
        statuses = [client.get("/public/page").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert not any(header_values(r, "X-Ostiary-Subject") for r in upstream_log(upstream))


def test_item6_streams_both_ways_and_enforces_the_body_limit(gateway: Process, upstream: Process,
                                                             read_token: str) -> None:
    clear_upstream_log(upstream)
    with gateway_http(gateway) as client:
        with client.stream("GET", "/notes/big", headers=bearer(read_token)) as r:
            assert r.status_code == 200
            assert sum(len(c) for c in r.iter_raw()) == 16 * 65536
        chunks = (b"y" * 10_000 for _ in range(9))  # streamed, chunked: 90 kB within the 100 kB limit
        assert client.post("/strip/upload", content=chunks, headers=bearer(read_token)).json()["body_size"] == 90_000
        too_big = client.post("/strip/upload", content=(b"y" * 20_000 for _ in range(6)), headers=bearer(read_token))
        assert too_big.status_code == 413
        declared = client.post("/strip/upload", content=b"z" * 100_001, headers=bearer(read_token))
        assert declared.status_code == 413
    # both framings (a smuggling attempt): the upstream gets one message, framed one way, or nothing at all
    clear_upstream_log(upstream)
    status, _ = raw_request(gateway.port, b"/strip/upload", b"POST", f"Authorization: Bearer {read_token}\r\n"
                            "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n".encode(),
                            b"5\r\nhello\r\n0\r\n\r\nGET /strip/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    seen = upstream_log(upstream)
    assert status in (200, 400) and [r["body_size"] for r in seen] == ([5] if status == 200 else [])


def test_item6_upstream_down_is_502_and_slow_is_504_as_json_with_a_request_id(gateway: Process,
                                                                             read_token: str) -> None:
    with gateway_http(gateway) as client:
        down = client.get("/down/x", headers=bearer(read_token))
        assert down.status_code == 502 and down.json()["request_id"] == down.headers["x-request-id"]
        slow = client.get("/strip/slow", headers=bearer(read_token))
        assert slow.status_code == 504 and slow.json()["error"] == "gateway_timeout" and slow.json()["request_id"]


def test_item9_metrics_are_never_proxied_and_count_requests(gateway: Process, upstream: Process) -> None:
    clear_upstream_log(upstream)
    metrics = httpx.get(gateway.base_url + "/_ostiary/metrics").text
    assert 'ostiary_gateway_requests_total{route="/notes",status="200"}' in metrics
    assert 'ostiary_gateway_rate_limited_total{route="/notes/limited"} 30' in metrics
    assert 'ostiary_gateway_upstream_errors_total{route="/down",kind="unreachable"}' in metrics
    assert "ostiary_gateway_request_duration_seconds_bucket" in metrics
    assert upstream_log(upstream) == []
    assert '"route":"/notes"' in gateway.output and '"request_id"' in gateway.output  # JSON access log


def test_item9_check_prints_the_decision_and_why(gateway: Process, issuer: Issuer, read_token: str) -> None:
    path = next(gateway.log.parent.glob("gateway-*.toml"))
    run = [OSTIARY, "gateway", "check", "--config", str(path), "--token", read_token, "--method", "POST",
           "--path", "/notes/1"]
    denied = subprocess.run(run, capture_output=True, text=True, env=clean_env(), timeout=30)
    assert denied.returncode == 1, denied.stderr
    assert "DENY 403 insufficient_scope" in denied.stdout and "notes:write" in denied.stdout
    run[run.index("POST")] = "GET"
    allowed = subprocess.run(run, capture_output=True, text=True, env=clean_env(), timeout=30)
    assert allowed.returncode == 0 and allowed.stdout.startswith("ALLOW"), allowed.stdout + allowed.stderr
    assert issuer.reader[0] in allowed.stdout


@pytest.mark.parametrize(("text", "expected"), [
    ('issuer = "http://x"\n[[routes]\npath = "/a"\n', "line 2"),
    ('issuer = "http://x"\n[[routes]]\npath = "/a"\nupstream = "http://u"\n', "routes[0].audience: is required"),
])
def test_item10_malformed_configuration_is_refused_at_start_with_file_key_and_reason(
        tmp_path: os.PathLike[str], text: str, expected: str) -> None:
    path = os.path.join(tmp_path, "bad.toml")
    with open(path, "w") as f:
        f.write(text)
    result = subprocess.run([OSTIARY, "gateway", "--config", path, "--port", str(free_port())], capture_output=True,
                            text=True, env=clean_env(), timeout=30)
    assert result.returncode != 0
    assert path in result.stderr and expected in result.stderr, result.stderr


def test_item6_sighup_reloads_routes_without_dropping_connections(
        issuer: Issuer, upstream: Process, tmp_path_factory: pytest.TempPathFactory, read_token: str) -> None:
    process = start_gateway(tmp_path_factory.mktemp("reload"), config(issuer, upstream))
    try:
        path = next(process.log.parent.glob("gateway-*.toml"))
        with gateway_http(process) as client:
            assert client.get("/extra/1", headers=bearer(read_token)).status_code == 404
            path.write_text(config(issuer, upstream, f"""
[[routes]]
path = "/extra"
upstream = "{upstream.base_url}"
audience = "{NOTES}"
scopes = {{ GET = "notes:read" }}
"""))
            os.kill(process.proc.pid, signal.SIGHUP)
            poll(lambda: client.get("/extra/1", headers=bearer(read_token)).status_code == 200, timeout=10,
                 interval=0.1, what="the reloaded route")
            path.write_text("not = [valid")  # a broken file is refused and the running routes stay
            os.kill(process.proc.pid, signal.SIGHUP)
            poll(lambda: "reload refused" in process.output, timeout=10, interval=0.1, what="the refusal")
            assert client.get("/extra/1", headers=bearer(read_token)).status_code == 200
    finally:
        process.stop()


@pytest.mark.redis
@needs_redis
def test_item5_redis_rate_limit_is_shared_exactly_by_two_gateway_processes(
        issuer: Issuer, upstream: Process, tmp_path_factory: pytest.TempPathFactory) -> None:
    prefix = f"ostiary-test:gateway:{uuid.uuid4().hex}:"  # this test's keys only
    shared = config(issuer, upstream).replace(
        "\n[[routes]]", f'\nrate_limit_backend = "{REDIS_URL}"\nrate_limit_prefix = "{prefix}"\n\n[[routes]]', 1)
    workdir = tmp_path_factory.mktemp("redis")
    first, second = start_gateway(workdir, shared), start_gateway(workdir, shared)
    try:
        token = issuer.token(issuer.reader, "notes:read")

        def call(i: int) -> httpx.Response:
            base = (first if i % 2 else second).base_url
            return httpx.get(base + "/notes/limited/x", headers=bearer(token), timeout=20)

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(call, range(50)))
        # 25 requests reached each gateway: with a budget each, 40 would pass; one shared budget lets 20 pass
        assert sorted(r.status_code for r in answers) == [200] * 20 + [429] * 30
        assert 1 <= int(next(r for r in answers if r.status_code == 429).headers["retry-after"]) <= 60
    finally:
        first.stop()
        second.stop()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)
        client.close()


def test_item4_internal_jwt_is_short_lived_for_the_upstream_only_and_unlike_an_access_token(
        gateway: Process, upstream: Process, issuer: Issuer, read_token: str) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    clear_upstream_log(upstream)
    forged = {"X-Ostiary-Jwt": "forged", "X_Ostiary_Jwt": "forged"}
    assert httpx.get(gateway.base_url + "/signed/1", headers={**bearer(read_token), **forged}).status_code == 200
    [seen] = upstream_log(upstream)
    [internal] = header_values(seen, "X-Ostiary-Jwt")
    jwks = httpx.get(gateway.base_url + "/_ostiary/jwks.json").json()
    decoded = jwt.decode(internal, KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert decoded.header["typ"] == "ostiary-gateway+jwt"  # an RFC 9068 verifier accepts only at+jwt
    claims = decoded.claims
    assert claims["iss"] == "https://gateway.internal.example" != issuer.server.issuer
    assert claims["aud"] == upstream.base_url and claims["exp"] - claims["iat"] <= 60
    assert claims["client_id"] == issuer.reader[0] and claims["scope"] == "notes:read"
    assert internal != read_token
    other = httpx.get(gateway.base_url + "/notes/1", headers=bearer(read_token))  # routes without it get none
    assert other.status_code == 200 and not header_values(other.json(), "X-Ostiary-Jwt")


def test_item6_websocket_passes_checked_with_identity_and_is_refused_without_a_token(
        gateway: Process, read_token: str, issuer: Issuer) -> None:
    import json

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = gateway.base_url.replace("http", "ws")
    with connect(url + "/ws/chat", additional_headers={**bearer(read_token), "X_Ostiary_Subject": "admin"},
                 subprotocols=["chat"], open_timeout=10) as ws:
        assert ws.subprotocol == "chat"
        hello = json.loads(ws.recv(timeout=10))
        assert hello["path"] == "/ws/chat"
        assert header_values(hello, "X-Ostiary-Client-Id") == [issuer.reader[0]]
        assert header_values(hello, "X-Ostiary-Subject") == [issuer.reader[0]]
        assert not header_values(hello, "Authorization")
        ws.send("hi")
        assert ws.recv(timeout=10) == "echo:hi"
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/ws/chat", open_timeout=10)
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as not_here:
        connect(url + "/notes/1", additional_headers=bearer(read_token), open_timeout=10)
    assert not_here.value.response.status_code == 400


def test_item3_opaque_tokens_are_checked_by_introspection_and_a_revoked_one_is_refused(
        gateway: Process, upstream: Process, issuer: Issuer) -> None:
    opaque = issuer.token(issuer.opaque, "notes:read")
    assert opaque.count(".") != 2  # not a JWT
    clear_upstream_log(upstream)
    with gateway_http(gateway) as client:
        r = client.get("/notes/1", headers=bearer(opaque))
        assert r.status_code == 200, r.text
        [seen] = upstream_log(upstream)
        assert header_values(seen, "X-Ostiary-Client-Id") == [issuer.opaque[0]]
        assert client.post("/notes", headers=bearer(opaque)).status_code == 403  # scopes from introspection
        with issuer.server.http() as http:
            assert http.post("/revoke", data={"token": opaque}, auth=issuer.opaque).status_code == 200
        other = issuer.token(issuer.opaque, "notes:read")
        with issuer.server.http() as http:
            http.post("/revoke", data={"token": other}, auth=issuer.opaque)
        assert client.get("/notes/1", headers=bearer(other)).status_code == 401  # never seen active: refused
