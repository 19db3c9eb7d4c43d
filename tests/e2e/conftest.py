"""Fixtures that run a real `ostiary serve` process, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET_KEY, create_pg_database, drop_pg_database, needs_postgres
from tests.e2e._server import ServerProcess, start_server
from tests.e2e.gateway_fixtures import gateway_issuer, gateway_upstream  # session fixtures of the gateway tests

__all__ = ["gateway_issuer", "gateway_upstream"]

REGISTRATION_TOKEN = "e2e-initial-access-token"
CACHE_TTL = 2.0  # OSTIARY_CACHE_TTL for the server: how long a worker trusts cached clients and keys


@dataclass(frozen=True)
class Backend:
    name: str
    workdir: Path
    database_url: str | None  # None: the server's default SQLite file in workdir (demo client on)

    @property
    def serve_env(self) -> dict[str, str]:
        """PostgreSQL: every node needs the same secret key (SQLite generates one beside its file)."""
        return {} if self.database_url is None else {"OSTIARY_SECRET_KEY": TEST_SECRET_KEY}

    @property
    def serve_args(self) -> tuple[str, ...]:
        return () if self.database_url is None else ("--demo",)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres,
                                                                                   needs_postgres])])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    if request.param == "sqlite":
        yield Backend("sqlite", workdir, None)
        return
    url = create_pg_database()
    try:
        yield Backend("postgres", workdir, url)
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="module")
def server(backend: Backend) -> Iterator[ServerProcess]:
    """`ostiary serve --workers 2`, issuer and registration token set through the environment."""
    token_file = backend.workdir / "registration-token"
    token_file.write_text(REGISTRATION_TOKEN + "\n")
    env = {"OSTIARY_ISSUER": "http://localhost:{port}", "OSTIARY_REGISTRATION_TOKEN_FILE": str(token_file),
           "OSTIARY_CACHE_TTL": str(CACHE_TTL), "OSTIARY_REGISTRATION__API_SCOPES": "api:read api:write"}
    env.update(backend.serve_env)
    proc = start_server(backend.workdir, "--workers", "2", *backend.serve_args, database_url=backend.database_url,
                        env=env)
    try:
        yield proc
    finally:
        proc.stop()
