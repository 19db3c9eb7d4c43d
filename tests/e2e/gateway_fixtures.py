"""Shared fixtures of the gateway's end-to-end tests: a real `ostiary serve`, clients, tokens, the upstream.

The issuer and the upstream are session fixtures (registered in tests/e2e/conftest.py), started once for
every gateway test module.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e._gateway import Process, start_upstream
from tests.e2e._server import ServerProcess, start_server

NOTES = "https://notes.example.com"
OTHER = "https://other.example.com"


def notes_routes(issuer: str, upstream: str, notes_extra: str = "") -> str:
    """The start of a gateway file: the issuer, the notes API (with `notes_extra` settings) and a rate-limited
    part of it (20 a minute)."""
    return f"""
issuer = "{issuer}"

[[routes]]
path = "/notes"
upstream = "{upstream}"
audience = "{NOTES}"
scopes = {{ GET = "notes:read", POST = "notes:write" }}
{notes_extra}

[[routes]]
path = "/notes/limited"
upstream = "{upstream}"
audience = "{NOTES}"
scopes = {{ GET = "notes:read" }}
rate_limit = {{ requests = 20, per_seconds = 60, key = "client" }}
"""


@dataclass(frozen=True)
class Issuer:
    server: ServerProcess
    writer: tuple[str, str]  # client_id, secret: notes:read notes:write, audiences NOTES and OTHER
    reader: tuple[str, str]  # notes:read, audience NOTES
    opaque: tuple[str, str]  # notes:read, audience NOTES, opaque access tokens
    api: tuple[str, str]  # the notes API as a resource server: may introspect tokens for NOTES

    def token(self, who: tuple[str, str], scope: str, resource: str = NOTES, **form: str) -> str:
        with self.server.http() as client:
            r = client.post("/token", data={"grant_type": "client_credentials", "scope": scope, "resource": resource,
                                            **form}, auth=who)
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token


def _client(server: ServerProcess, name: str, scope: str, *audiences: str, extra: tuple[str, ...] = ()
            ) -> tuple[str, str]:
    args = ["client", "create", name, "--scope", scope, "--json", *extra]
    for audience in audiences:
        args += ["--audience", audience]
    import json

    data = json.loads(server.cli(*args).stdout)
    return data["client_id"], data["client_secret"]


@pytest.fixture(scope="session")
def gateway_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    workdir = tmp_path_factory.mktemp("gateway-issuer")
    server = start_server(workdir, "--workers", "1", "--no-demo")
    try:
        with ThreadPoolExecutor(4) as pool:  # each CLI call is a process start: run them side by side
            writer = pool.submit(_client, server, "notes-writer", "notes:read notes:write", NOTES, OTHER)
            reader = pool.submit(_client, server, "notes-reader", "notes:read", NOTES)
            opaque = pool.submit(_client, server, "notes-opaque", "notes:read", NOTES,
                                 extra=("--token-format", "opaque"))
            api = pool.submit(_client, server, "notes-api", "", NOTES, extra=("--resource-server",))
            yield Issuer(server, writer.result(), reader.result(), opaque.result(), api.result())
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gateway_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    process = start_upstream(tmp_path_factory.mktemp("gateway-upstream"))
    try:
        yield process
    finally:
        process.stop()


def raw_request(port: int, target: bytes, method: bytes = b"GET", headers: bytes = b"",
                body: bytes = b"") -> tuple[int, bytes]:
    """Send a request exactly as written (no client-side normalization); the status and the raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers
                     + b"\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def gateway_http(gateway: Process) -> httpx.Client:
    return httpx.Client(base_url=gateway.base_url, timeout=10)


def workdir_of(factory: pytest.TempPathFactory, name: str) -> Path:
    return factory.mktemp(name)


@pytest.fixture(scope="module")
def issuer(gateway_issuer: Issuer) -> Issuer:
    return gateway_issuer


@pytest.fixture(scope="module")
def upstream(gateway_upstream: Process) -> Process:
    return gateway_upstream
