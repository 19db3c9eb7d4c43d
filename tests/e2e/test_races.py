"""Twice at once, across two real server processes sharing one database (SQLite and PostgreSQL).

docs/security.md, concurrency contract: 50 parallel redemptions of one code and of one refresh
token give one success and clean invalid_grant losers (never a 5xx), and the detected reuse
revokes the whole family, the winner's tokens included; 50 parallel revocations all answer 200.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import basic
from tests.e2e._server import ServerProcess, start_server
from tests.e2e.conftest import Backend
from tests.protocol._oidc_flow import PASSWORD, REDIRECT, Flow, run_flow

pytestmark = [pytest.mark.e2e]

PARALLEL = 50
ISSUER = "http://localhost:8999"  # both nodes are one issuer; no request goes there


def node_env(workdir: Path) -> dict[str, str]:
    key_file = workdir / "secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(32))
    return {"OSTIARY_ISSUER": ISSUER, "OSTIARY_SECRET_KEY": key_file.read_text(), "OSTIARY_CACHE_TTL": "1"}


@pytest.fixture(scope="module")
def nodes(backend: Backend) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = node_env(backend.workdir)
    first = start_server(backend.workdir, *backend.serve_args, database_url=backend.database_url, env=env)
    try:
        second = start_server(backend.workdir, *backend.serve_args, database_url=backend.database_url, env=env)
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.fixture(scope="module")
def rp(nodes: tuple[ServerProcess, ServerProcess]) -> tuple[str, str, types.SimpleNamespace]:
    """A confidential web app (it introspects its own tokens) and a user, made with the CLI."""
    server = nodes[0]
    out = server.cli("client", "create", "Race app", "--grant-type", "authorization_code", "--grant-type",
                     "refresh_token", "--redirect-uri", REDIRECT, "--json", "--database-url", server.database_url)
    data = json.loads(out.stdout)
    username = "racer-" + secrets.token_hex(3)
    server.cli("user", "create", username, "--password-stdin", "--name", "Race User",
               "--database-url", server.database_url, input=PASSWORD + "\n")
    return data["client_id"], data["client_secret"], types.SimpleNamespace(username=username)


async def _flow(server: ServerProcess, rp: tuple[str, str, types.SimpleNamespace]) -> Flow:
    cid, secret, user = rp
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as b:
        return await run_flow(b, cid, secret, user)


async def _everywhere(nodes: tuple[ServerProcess, ServerProcess], path: str, form: dict[str, str],
                      headers: dict[str, str]) -> list[httpx.Response]:
    """PARALLEL identical POSTs, alternating between the two nodes, all in flight at once."""
    limits = httpx.Limits(max_connections=PARALLEL)
    async with httpx.AsyncClient(base_url=nodes[0].base_url, timeout=30, limits=limits) as a, \
            httpx.AsyncClient(base_url=nodes[1].base_url, timeout=30, limits=limits) as b:
        clients = (a, b)
        return list(await asyncio.gather(*(clients[i % 2].post(path, data=form, headers=headers)
                                           for i in range(PARALLEL))))


def _one_winner(answers: list[httpx.Response]) -> dict[str, str]:
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [400] * (PARALLEL - 1), statuses
    assert {r.json()["error"] for r in answers if r.status_code == 400} == {"invalid_grant"}
    return dict(next(r for r in answers if r.status_code == 200).json())


def _active(server: ServerProcess, cid: str, secret: str, token: str) -> bool:
    with server.http() as http:
        r = http.post("/introspect", data={"token": token}, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    return bool(r.json()["active"])


def _refresh_status(server: ServerProcess, cid: str, secret: str, token: str) -> int:
    with server.http() as http:
        return http.post("/token", data={"grant_type": "refresh_token", "refresh_token": token},
                         headers=basic(cid, secret)).status_code


async def test_rfc6749_4_1_2_fifty_parallel_redemptions_of_one_code_on_two_nodes(nodes, rp):
    cid, secret, _ = rp
    flow = await _flow(nodes[0], rp)
    winner = _one_winner(await _everywhere(nodes, "/token", flow.token_form(), basic(cid, secret)))
    for server in nodes:  # the replays revoked what the winner received, on every node
        assert not _active(server, cid, secret, winner["access_token"])
        assert not _active(server, cid, secret, winner["refresh_token"])
        assert _refresh_status(server, cid, secret, winner["refresh_token"]) == 400


async def test_rfc9700_4_14_2_fifty_parallel_refreshes_of_one_token_on_two_nodes(nodes, rp):
    cid, secret, _ = rp
    flow = await _flow(nodes[1], rp)
    async with httpx.AsyncClient(base_url=nodes[1].base_url, timeout=30) as b:
        first = (await b.post("/token", data=flow.token_form(), headers=basic(cid, secret))).json()
    assert _active(nodes[0], cid, secret, first["access_token"])
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    winner = _one_winner(await _everywhere(nodes, "/token", form, basic(cid, secret)))
    for server in nodes:  # no token of the family works, the winner's new pair included
        for token in (first["access_token"], winner["access_token"], winner["refresh_token"]):
            assert not _active(server, cid, secret, token)
        assert _refresh_status(server, cid, secret, winner["refresh_token"]) == 400


async def test_rfc7009_2_2_fifty_parallel_revocations_on_two_nodes(nodes, rp):
    cid, secret, _ = rp
    flow = await _flow(nodes[0], rp)
    async with httpx.AsyncClient(base_url=nodes[0].base_url, timeout=30) as b:
        body = (await b.post("/token", data=flow.token_form(), headers=basic(cid, secret))).json()
    assert _active(nodes[1], cid, secret, body["refresh_token"])
    form = {"token": body["refresh_token"], "token_type_hint": "refresh_token"}
    answers = await _everywhere(nodes, "/revoke", form, basic(cid, secret))
    assert [r.status_code for r in answers] == [200] * PARALLEL, [r.text for r in answers if r.status_code != 200]
    for server in nodes:
        assert not _active(server, cid, secret, body["refresh_token"])
        assert not _active(server, cid, secret, body["access_token"])
