"""`ostiary serve` as users run it: a real process with two workers, on SQLite and on PostgreSQL.

Tests in this module share one server per backend and run in file order; key rotation, which
changes the server's state for everyone, comes last.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e._server import (
    ServerProcess,
    header_of,
    jwks_verify,
    poll,
    proc_available,
    start_server,
    token_response,
)
from tests.e2e.conftest import CACHE_TTL, REGISTRATION_TOKEN, Backend

pytestmark = [pytest.mark.e2e]

needs_proc = pytest.mark.skipif(not proc_available(), reason="needs Linux /proc to tell the workers apart")


def banner_credentials(stdout: str) -> tuple[str, str, list[str]]:
    """client_id, client_secret and the curl command printed by the first start."""
    cid = re.search(r"^\s+client_id\s+(\S+)$", stdout, re.M)
    secret = re.search(r"^\s+client_secret\s+(\S+)$", stdout, re.M)
    curl = re.search(r"^\s+(curl .+)$", stdout, re.M)
    assert cid and secret and curl, f"no demo client in the banner:\n{stdout}"
    return cid.group(1), secret.group(1), shlex.split(curl.group(1))


@pytest.fixture(scope="module")
def demo(server: ServerProcess) -> tuple[str, str]:
    cid, secret, _ = banner_credentials(server.stdout)
    return cid, secret


def curl_as_httpx(argv: list[str]) -> httpx.Response:
    """Replay the printed `curl -s -u ID:SECRET -d k=v ... URL` with httpx."""
    assert argv[0] == "curl"
    auth: tuple[str, str] | None = None
    data: dict[str, str] = {}
    url = ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-s":
            continue
        if arg == "-u":
            user, _, password = next(args).partition(":")
            auth = (user, password)
        elif arg == "-d":
            name, _, value = next(args).partition("=")
            data[name] = value
        else:
            url = arg
    return httpx.post(url, data=data, auth=auth, timeout=10)


def test_first_start_prints_a_working_demo_client(server: ServerProcess) -> None:
    cid, secret, curl = banner_credentials(server.stdout)
    assert cid == "demo" and f"{cid}:{secret}" in curl
    assert "generated" in server.stdout and "signing keys" in server.stdout
    r = curl_as_httpx(curl)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api:read"
    assert body["expires_in"] > 0
    assert r.headers["cache-control"] == "no-store"


def test_second_start_keeps_the_demo_client(server: ServerProcess, backend: Backend, demo: tuple[str, str]) -> None:
    # The banner is printed once bootstrap is done; the second server need not finish starting.
    second = start_server(backend.workdir, *backend.serve_args, database_url=backend.database_url, wait=False,
                          env=backend.serve_env)
    try:
        out = poll(lambda: "Demo client" in second.stdout and second.stdout, timeout=45,
                   what="the second start's banner")
    finally:
        second.stop()
    assert "Demo client 'demo' exists" in out, out
    assert "client_secret" not in out and "created now" not in out
    assert "generated" not in out, "keys were generated again"
    with server.http() as http:
        r = token_response(http, *demo)
    assert r.status_code == 200, r.text


def test_issuer_comes_from_the_environment(server: ServerProcess, demo: tuple[str, str]) -> None:
    assert server.issuer.startswith("http://localhost:")
    with server.http() as http:
        meta = http.get("/.well-known/oauth-authorization-server").json()
        assert meta["issuer"] == server.issuer
        assert meta["token_endpoint"] == server.issuer + "/token"
        assert meta["registration_endpoint"] == server.issuer + "/register"
        r = token_response(http, *demo)
        jwks = http.get("/jwks").json()
    assert jwks_verify(r.json()["access_token"], jwks, issuer=server.issuer).claims["iss"] == server.issuer


def test_registration_token_file_opens_dynamic_registration(server: ServerProcess) -> None:
    metadata = {"client_name": "registered", "grant_types": ["client_credentials"], "scope": "api:read"}
    with server.http() as http:
        r = http.post("/register", json=metadata)
        assert r.status_code == 401, r.text
        r = http.post("/register", json=metadata, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401, r.text
        r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
        assert r.status_code == 201, r.text
        client = r.json()
        r = token_response(http, client["client_id"], client["client_secret"], scope="api:read")
    assert r.status_code == 200, r.text


def test_client_created_by_cli_works_within_the_cache_ttl(server: ServerProcess) -> None:
    client_id = f"cli-{uuid.uuid4().hex[:8]}"
    with server.http() as http:
        # An unknown id is cached as unknown too: the new client must appear once that expires.
        assert token_response(http, client_id, "not-yet").status_code == 401
    out = server.cli("client", "create", "CLI client", "--client-id", client_id, "--scope", "api:read api:write",
                     "--json", "--database-url", server.database_url)
    created_at = time.monotonic()
    created = json.loads(out.stdout)
    assert created["client_id"] == client_id and created["client_secret"]

    def got_token() -> dict[str, Any] | None:
        # A fresh connection each time: either worker may answer.
        with server.http() as http:
            r = token_response(http, client_id, created["client_secret"], scope="api:write")
        return r.json() if r.status_code == 200 else None

    body = poll(got_token, timeout=CACHE_TTL + 5, what="a token for the client created by the CLI")
    assert body["scope"] == "api:write"
    # Once the TTL of the "unknown" entry has passed, every worker knows the client.
    time.sleep(max(0.0, created_at + CACHE_TTL + 0.5 - time.monotonic()))
    if proc_available():
        answers = server.on_each_worker(
            lambda http: token_response(http, client_id, created["client_secret"], scope="api:write"))
        assert len(answers) == 2 and all(r.status_code == 200 for r in answers.values()), answers
    for _ in range(6):
        assert got_token() is not None


def test_ostiary_token_command_prints_token_and_claims(server: ServerProcess, demo: tuple[str, str]) -> None:
    out = server.cli("token", "--client-id", demo[0], "--client-secret", demo[1], "--issuer", server.issuer,
                     "--scope", "api:read", "--decode")
    token, _, rest = out.stdout.partition("\n")
    decoded = json.loads(rest)
    assert decoded["header"]["typ"] == "at+jwt"
    assert decoded["header"]["kid"] == header_of(token)["kid"]
    claims = decoded["claims"]
    assert claims["iss"] == server.issuer
    assert claims["client_id"] == demo[0]
    assert claims["scope"] == "api:read"
    assert claims["exp_utc"].endswith("+00:00")
    assert "signature not checked" in out.stderr
    with server.http() as http:
        jwks_verify(token, http.get("/jwks").json(), issuer=server.issuer)


@needs_proc
def test_two_workers_both_issue_tokens_that_verify(server: ServerProcess, demo: tuple[str, str]) -> None:
    workers = server.worker_pids()
    assert len(workers) == 2, f"expected 2 worker processes, found {workers}"
    answers = server.on_each_worker(lambda http: token_response(http, *demo))
    assert set(answers) == set(workers), "not every worker answered"
    with server.http() as http:
        jwks = http.get("/jwks").json()
        tokens = [r.json()["access_token"] for r in answers.values()]
        tokens += [token_response(http, *demo).json()["access_token"] for _ in range(10)]
    for token in tokens:
        jwks_verify(token, jwks, issuer=server.issuer)


@needs_proc
def test_revocation_is_seen_by_every_worker(server: ServerProcess, demo: tuple[str, str]) -> None:
    with server.http() as http:
        token = token_response(http, *demo).json()["access_token"]

    def introspect(http: httpx.Client) -> httpx.Response:
        return http.post("/introspect", data={"token": token}, auth=demo)

    before = server.on_each_worker(introspect)
    assert len(before) == 2 and all(r.json()["active"] is True for r in before.values())
    with server.http() as http:
        r = http.post("/revoke", data={"token": token, "token_type_hint": "access_token"}, auth=demo)
        assert r.status_code == 200, r.text
    after = server.on_each_worker(introspect)
    assert len(after) == 2, "not every worker answered"
    assert {pid: r.json() for pid, r in after.items()} == {pid: {"active": False} for pid in after}


def test_keys_rotate_while_running(server: ServerProcess, demo: tuple[str, str]) -> None:
    with server.http() as http:
        old_token = token_response(http, *demo).json()["access_token"]
    old_kid = header_of(old_token)["kid"]
    out = server.cli("keys", "rotate", "--database-url", server.database_url).stdout
    match = re.search(r"^active (\S+) \(ES256\)", out, re.M)
    assert match, out
    new_kid = match.group(1)
    assert new_kid != old_kid

    def every_worker_signs_with_new_key() -> bool:
        answers = server.on_each_worker(lambda http: token_response(http, *demo), attempts=20)
        return bool(answers) and all(header_of(r.json()["access_token"])["kid"] == new_kid for r in answers.values())

    poll(every_worker_signs_with_new_key, timeout=CACHE_TTL + 10, interval=0.5, what=f"tokens signed by {new_kid}")
    with server.http() as http:
        new_token = token_response(http, *demo).json()["access_token"]
        jwks = http.get("/jwks").json()
        published = {k["kid"] for k in jwks["keys"]}
        assert {old_kid, new_kid} <= published
        jwks_verify(old_token, jwks, issuer=server.issuer)  # the retired key is still published
        jwks_verify(new_token, jwks, issuer=server.issuer)
        for token in (old_token, new_token):
            r = http.post("/introspect", data={"token": token}, auth=demo)
            assert r.json()["active"] is True, r.text
    listing = json.loads(server.cli("keys", "list", "--json", "--database-url", server.database_url).stdout)
    status = {k["kid"]: k["status"] for k in listing}
    assert status[old_kid] == "retired" and status[new_kid] == "active"
