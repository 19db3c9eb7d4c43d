"""The whole server over the in-memory backend (database_url "memory:", docs/configuration.md):
tokens, the browser flow, single use and rotation work as on SQL; what it cannot serve is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ostiary.config import ConfigError, SmartSettings, load_settings
from ostiary.store.memory import MemoryDatabase
from tests.conftest import RunningApp, basic, settings_for, start_app
from tests.protocol._oidc_flow import browser, exchange, make_rp, make_user, run_flow


@pytest.fixture(scope="module")
async def memory_app() -> AsyncIterator[RunningApp]:
    async for running in start_app(settings_for("memory:", smart=SmartSettings(enabled=False))):
        yield running


async def test_memory_provider_is_built_over_the_memory_store(memory_app: RunningApp) -> None:
    assert isinstance(memory_app.provider.database, MemoryDatabase)
    r = await memory_app.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert (await memory_app.http.get("/jwks")).json()["keys"]  # bootstrap made a key set in memory


async def test_client_credentials_and_introspection_over_memory(memory_app: RunningApp) -> None:
    cid, secret = await memory_app.add_client(scope="api:read")
    assert secret is not None
    r = await memory_app.http.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                                   headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    r = await memory_app.http.post("/introspect", data={"token": r.json()["access_token"]},
                                   headers=basic(cid, secret))
    assert r.status_code == 200 and r.json()["active"] is True


async def test_rfc6749_4_1_2_code_redeemed_at_once_gives_one_token_response(memory_app: RunningApp) -> None:
    user = await make_user(memory_app)
    b = browser(memory_app)
    cid, secret = await make_rp(memory_app)
    flow = await run_flow(b, cid, secret, user)
    answers = await asyncio.gather(*(exchange(memory_app.http, flow) for _ in range(20)))
    assert sorted(r.status_code for r in answers) == [200] + [400] * 19
    assert all(r.json()["error"] == "invalid_grant" for r in answers if r.status_code == 400)


async def test_rfc9700_4_14_2_refresh_rotation_and_reuse_over_memory(memory_app: RunningApp) -> None:
    user = await make_user(memory_app)
    b = browser(memory_app)
    cid, secret = await make_rp(memory_app)
    flow = await run_flow(b, cid, secret, user)
    first = (await exchange(memory_app.http, flow)).json()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    rotated = await memory_app.http.post("/token", data=form, headers=basic(cid, secret or ""))
    assert rotated.status_code == 200, rotated.text
    replay = await memory_app.http.post("/token", data=form, headers=basic(cid, secret or ""))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # the reuse revoked the family: the successor is dead too
    again = await memory_app.http.post("/token", headers=basic(cid, secret or ""),
                                       data={"grant_type": "refresh_token",
                                             "refresh_token": rotated.json()["refresh_token"]})
    assert again.status_code == 400


def test_memory_refuses_the_fhir_data_it_cannot_hold() -> None:
    with pytest.raises(ConfigError, match=r"smart\.enabled = false"):
        load_settings(env={}, database_url="memory:")
    assert load_settings(env={}, database_url="memory:", smart=SmartSettings(enabled=False)).database_url == "memory:"


def test_management_commands_refuse_memory_they_could_not_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ostiary.cli import main

    monkeypatch.setenv("OSTIARY_SMART__ENABLED", "false")
    result = CliRunner().invoke(main, ["client", "list", "--database-url", "memory:"])
    assert result.exit_code == 1 and "management commands cannot reach it" in result.output


def test_serve_refuses_several_workers_over_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ostiary.cli import main

    monkeypatch.setenv("OSTIARY_SMART__ENABLED", "false")
    result = CliRunner().invoke(main, ["serve", "--database-url", "memory:", "--workers", "2"])
    assert result.exit_code == 2 and "--workers 1" in result.output  # each worker would have its own store
