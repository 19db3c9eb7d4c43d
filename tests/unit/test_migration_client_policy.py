"""Migration 0006 on a database holding clients registered before the authorization policy
(docs/security.md "Existing registrations"): self-registered clients lose what their trust level
forbids, with an audit event and a line in the upgrade report; operators' clients keep everything."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ostiary.cli import main
from ostiary.config import RegistrationSettings, Settings
from ostiary.server.policy.clients import ClientUpgrade
from ostiary.store.sql.engine import _alembic_config, make_engine, upgrade
from ostiary.store.sql.schema import clients
from ostiary.store.sql.stores import SqlClientStore
from tests.conftest import POSTGRES_PARAM, create_pg_database, drop_pg_database, settings_for, start_app

NOW = int(time.time())
# Stored the way the code before the policy stored them: no trust_level, skip_consent in the JSON `extra`.
PRIVILEGED = {"client_name": "Self-registered", "token_endpoint_auth_method": "client_secret_basic",
              "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
              "redirect_uris": ["https://app.example/cb"], "post_logout_redirect_uris": [],
              "scope": "openid patient/*.rs user/*.cruds system/*.cruds ehr:launch api:read",
              "audiences": ["https://api.example"], "access_token_format": "opaque",
              "access_token_lifetime": 7 * 24 * 3600, "jwks": None, "jwks_uri": None,
              "token_endpoint_auth_signing_alg": None,
              "extra": {"skip_consent": True, "client_uri": "https://app.example"}, "sealed_registration_token": None}
OPERATORS = {**PRIVILEGED, "client_name": "Operator's EHR", "scope": "system/*.rs ehr:launch",
             "extra": {"skip_consent": True}, "grant_types": ["client_credentials"], "response_types": [],
             "redirect_uris": []}
OPEN_CC = {**PRIVILEGED, "client_name": "Anonymous backend", "scope": "system/*.cruds",
           "grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [], "extra": {}}


def _row(client_id: str, data: dict[str, Any], *, registered: bool) -> dict[str, Any]:
    return {"client_id": client_id, "secret_digest": "0" * 64, "sealed_secret": None,
            "registration_token_digest": "1" * 64 if registered else None, "data": orjson.dumps(data).decode(),
            "created_at": NOW, "updated_at": NOW}


@pytest.fixture(params=["sqlite", POSTGRES_PARAM])
def old_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
async def old_database(old_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A database at revision 0005 (before the policy) holding privileged clients."""
    url = old_url
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(_alembic_config(c, None, []), "0005"))
        await conn.execute(insert(clients), [
            _row("self-registered", PRIVILEGED, registered=True),
            _row("operators-ehr", OPERATORS, registered=False),
            _row("anonymous-backend", OPEN_CC, registered=True),
        ])
    try:
        yield url, engine
    finally:
        await engine.dispose()


async def test_migration_0006_narrows_self_registered_clients_and_reports_it(old_database, caplog):
    _, engine = old_database
    settings = Settings(registration=RegistrationSettings(api_scopes=("api:read",)), registration_token="t")
    with caplog.at_level(logging.INFO, logger="ostiary.audit"):
        report = await upgrade(engine, client_upgrade=ClientUpgrade.from_settings(settings))
    store = SqlClientStore(engine)
    narrowed = await store.get("self-registered")
    assert narrowed is not None and narrowed.trust_level == "registrant"
    assert narrowed.scope == "openid patient/*.rs api:read"
    assert (narrowed.skip_consent, narrowed.audiences, narrowed.access_token_format,
            narrowed.access_token_lifetime) == (False, (), None, None)
    assert narrowed.extra == {"client_uri": "https://app.example"} and narrowed.redirect_uris
    line = next(x for x in report if "self-registered" in x)
    for removed in ("system/*.cruds", "user/*.cruds", "ehr:launch", "skip_consent", "audience https://api.example",
                    "access_token_lifetime", "access_token_format"):
        assert removed in line, removed
    operators = await store.get("operators-ehr")  # an operator's client is admin and keeps everything
    assert operators is not None and operators.trust_level == "admin"
    assert operators.scope == "system/*.rs ehr:launch"
    assert operators.skip_consent and "skip_consent" not in operators.extra
    assert not any("operators-ehr" in x for x in report)
    events = [orjson.loads(r.getMessage()) for r in caplog.records if '"client_narrowed"' in r.getMessage()]
    assert {e["client_id"] for e in events} == {"self-registered", "anonymous-backend"}
    assert await upgrade(engine) == []  # applied once: nothing more to report


async def test_migration_0006_open_registration_server_loses_client_credentials(old_database):
    """Attack: the anonymous system/*.cruds backend registered before the fix keeps reading every patient."""
    _, engine = old_database
    settings = Settings(registration=RegistrationSettings(open=True))
    report = await upgrade(engine, client_upgrade=ClientUpgrade.from_settings(settings))
    backend = await SqlClientStore(engine).get("anonymous-backend")
    assert backend is not None and backend.trust_level == "open"
    assert backend.scope == "" and backend.grant_types == ()
    assert "grant type client_credentials" in next(x for x in report if "anonymous-backend" in x)


def test_ostiary_db_upgrade_prints_the_upgrade_report(old_database):
    url, _ = old_database
    result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url],
                                env={"OSTIARY_SECRET_KEY": "a-secret-key-for-this-test-only-0123456789"})
    assert result.exit_code == 0, result.output
    assert "upgrade report: client self-registered" in result.output and "system/*.cruds" in result.output


async def test_migration_0006_report_is_logged_at_server_start(old_database, caplog):
    url, engine = old_database
    await engine.dispose()
    with caplog.at_level(logging.WARNING, logger="ostiary"):
        async for _ in start_app(settings_for(url)):
            pass
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("upgrade report: ")]
    assert any("self-registered" in line and "system/*.cruds" in line for line in lines), lines
