"""DESIGN (security principles): an audit event for every security decision, never a secret in it."""

from __future__ import annotations

import logging

import orjson

from tests.conftest import basic


def _events(caplog) -> list[dict]:
    return [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "ostiary.audit"]


async def test_failed_client_authentication_is_audited_without_the_secret(running, caplog):
    cid, secret = await running.add_client(scope="api:read")
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    r = await running.http.post("/token", data={"grant_type": "client_credentials"},
                                headers=basic(cid, "wrong-" + secret))
    assert r.status_code == 401
    failures = [e for e in _events(caplog) if e["event"] == "client_auth_failed"]
    assert failures and failures[-1]["endpoint"].endswith("/token")
    assert secret not in caplog.text and ("wrong-" + secret) not in caplog.text


async def test_revocation_and_client_lifecycle_are_audited(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    cid, secret = await running.add_client(scope="api:read", access_token_format="opaque")
    token = (await running.http.post("/token", data={"grant_type": "client_credentials"},
                                     headers=basic(cid, secret))).json()["access_token"]
    await running.http.post("/revoke", data={"token": token}, headers=basic(cid, secret))
    await running.provider.registry.delete(cid)
    names = [e["event"] for e in _events(caplog)]
    assert names[:1] == ["client_registered"] and "token_revoked" in names and names[-1] == "client_deleted"
    assert token not in caplog.text


async def test_successful_tokens_are_audited_only_at_debug(running, caplog):
    cid, secret = await running.add_client(scope="api:read")
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    await running.http.post("/token", data={"grant_type": "client_credentials"}, headers=basic(cid, secret))
    assert not [e for e in _events(caplog) if e["event"] == "token_issued"]
    caplog.set_level(logging.DEBUG, logger="ostiary.audit")
    await running.http.post("/token", data={"grant_type": "client_credentials"}, headers=basic(cid, secret))
    issued = [e for e in _events(caplog) if e["event"] == "token_issued"]
    assert issued and issued[-1]["client_id"] == cid and issued[-1]["grant_type"] == "client_credentials"
