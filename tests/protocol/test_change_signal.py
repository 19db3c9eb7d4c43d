"""Issue 9 item 10: the token endpoint's hot path gains no query from the change signal; a change
signalled by one node reaches another (the two-process test is tests/e2e/test_change_signal.py)."""

from __future__ import annotations

import asyncio
import time

from ostiary.store.sql.changes import SqlChangeLog
from tests.conftest import RunningApp, basic

from ._oidc_flow import app_for


async def test_issue9_10_token_requests_never_read_the_change_signal(running: RunningApp, monkeypatch) -> None:
    cid, secret = await running.add_client()
    reads = 0
    original = SqlChangeLog.version

    async def counting(self: SqlChangeLog) -> int:
        nonlocal reads
        reads += 1
        return await original(self)

    monkeypatch.setattr(SqlChangeLog, "version", counting)
    start = time.monotonic()
    for _ in range(40):
        r = await running.http.post("/token", data={"grant_type": "client_credentials"}, headers=basic(cid, secret))
        assert r.status_code == 200
    elapsed = time.monotonic() - start
    interval = running.settings.change_poll_interval
    assert reads <= elapsed / interval + 1, (reads, elapsed)  # the background poll only, never per request


async def test_issue9_10_registration_update_on_one_node_reaches_another(running: RunningApp,
                                                                         database_url: str) -> None:
    """RFC 7592 DELETE on one node: the other node, which cached the client, refuses it within a second."""
    async with app_for(database_url, cache_ttl=60.0) as other:
        r = await running.http.post("/register", json={"grant_types": ["client_credentials"]},
                                    headers={"Authorization": "Bearer initial-token-for-tests"})
        assert r.status_code == 201, r.text
        reg = r.json()
        auth = basic(reg["client_id"], reg["client_secret"])
        form = {"grant_type": "client_credentials"}
        assert (await other.http.post("/token", data=form, headers=auth)).status_code == 200
        gone = await running.http.delete(reg["registration_client_uri"].removeprefix("http://127.0.0.1:8000"),
                                         headers={"Authorization": f"Bearer {reg['registration_access_token']}"})
        assert gone.status_code == 204
        deadline = time.monotonic() + 3.0
        while (status := (await other.http.post("/token", data=form, headers=auth)).status_code) == 200:
            assert time.monotonic() < deadline, "the other node still issues tokens to the deleted client"
            await asyncio.sleep(0.05)
        assert status == 401
