"""Real `ostiary serve` processes and registered clients for the third-party client tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from tests.e2e._server import ServerProcess, start_server

REGISTRATION_TOKEN = "interop-initial-access-token"
NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
NODE_TIMEOUT = 60.0
needs_node = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "openid-client").is_dir(),
    reason="needs `node` and tests/interop/node/node_modules (run `npm ci` in tests/interop/node)",
)


def run_node(script: str, payload: dict[str, Any], *, expect_failure: bool = False) -> dict[str, Any]:
    """Run tests/interop/node/SCRIPT with `payload` as JSON on stdin; its JSON output, or a failure
    (with `expect_failure`: the error the script reports, and the test fails if it succeeded)."""
    assert NODE is not None
    result = subprocess.run([NODE, script], cwd=NODE_DIR, input=json.dumps(payload), capture_output=True,
                            text=True, timeout=NODE_TIMEOUT)
    if expect_failure:
        assert result.returncode != 0, f"node {script} succeeded: {result.stdout}"
        failed: dict[str, Any] = json.loads(result.stdout)
        return failed
    if result.returncode != 0:
        pytest.fail(f"node {script} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def _serve(tmp: Path, **env: str) -> Iterator[ServerProcess]:
    # As docs/clients.md: the operator offers its API scopes to clients registered with the token.
    server = start_server(tmp, env={"OSTIARY_REGISTRATION_TOKEN": REGISTRATION_TOKEN,
                                    "OSTIARY_REGISTRATION__API_SCOPES": "api:read api:write", **env})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def es256_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The default server: ES256 JWT access tokens, SQLite."""
    yield from _serve(tmp_path_factory.mktemp("interop-es256"))


@pytest.fixture(scope="session")
def rs256_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _serve(tmp_path_factory.mktemp("interop-rs256"), OSTIARY_TOKENS__SIGNING_ALG="RS256")


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None = None
    private_jwk: dict[str, Any] | None = None  # private_key_jwt: the client's key, with kid and alg


def register(server: ServerProcess, **metadata: Any) -> RegisteredClient:
    """Dynamic registration (RFC 7591) with the initial access token."""
    metadata.setdefault("grant_types", ["client_credentials"])
    metadata.setdefault("scope", "api:read api:write")
    with server.http() as http:
        r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert r.status_code == 201, r.text
    body = r.json()
    return RegisteredClient(body["client_id"], body.get("client_secret"))


def create_with_cli(server: ServerProcess, *args: str) -> dict[str, Any]:
    out = server.cli("client", "create", *args, "--json", "--database-url", server.database_url)
    created: dict[str, Any] = json.loads(out.stdout)
    return created


@dataclass(frozen=True)
class Clients:
    basic: RegisteredClient
    post: RegisteredClient
    secret_jwt: RegisteredClient
    private_key_jwt: RegisteredClient


@pytest.fixture(scope="session")
def clients(es256_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Clients:
    """One client per authentication method on the ES256 server; private_key_jwt made with the CLI."""
    key = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)
    jwks_file = tmp_path_factory.mktemp("client-keys") / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    created = create_with_cli(es256_server, "private_key_jwt client", "--auth-method", "private_key_jwt",
                              "--jwks-file", str(jwks_file), "--scope", "api:read api:write")
    return Clients(
        basic=register(es256_server, token_endpoint_auth_method="client_secret_basic"),
        post=register(es256_server, token_endpoint_auth_method="client_secret_post"),
        secret_jwt=register(es256_server, token_endpoint_auth_method="client_secret_jwt"),
        private_key_jwt=RegisteredClient(created["client_id"], private_jwk=key.as_dict(private=True)),
    )
