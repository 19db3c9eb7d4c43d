"""`ostiary user mfa status|reset NAME`: what a user has enrolled, and the administrator's reset (a lost
phone): app and recovery codes removed, sessions ended, audited."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ostiary.cli import main
from ostiary.server.mfa import totp
from ostiary.store.identity import Session


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OSTIARY_"):
            monkeypatch.delenv(name)


def run(db: str, *args: str, input: str | None = None) -> Any:
    result = CliRunner().invoke(main, [*args, "--database-url", db], input=input)
    assert "Traceback" not in result.output
    return result


def with_provider(db: str, action: Any) -> Any:
    from ostiary.app.bootstrap import load_secret_key
    from ostiary.app.provider import open_provider
    from tests.conftest import settings_for

    async def go() -> Any:
        p = await open_provider(settings_for(db))
        try:
            load_secret_key(p)
            return await action(p)
        finally:
            await p.aclose()

    return asyncio.run(go())


def test_status_and_reset(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(db, "user", "create", "alice", "--password", "a long password").exit_code == 0
    out = run(db, "user", "mfa", "status", "alice")
    assert out.exit_code == 0 and "authenticator app: none" in out.output and "recovery codes left: 0" in out.output

    async def enrol(p: Any) -> None:
        user = await p.users.by_username("alice")
        pending = await p.mfa.begin_totp(user.id, "alice")
        assert await p.mfa.activate_totp(user.id, totp.code_at(pending.secret, totp.step_at(time.time())))
        await p.sessions.create(Session(digest="d" * 64, sid="s1", user_id=user.id, auth_time=0,
                                        expires_at=int(time.time()) + 600, amr=("pwd", "otp", "mfa")))

    with_provider(db, enrol)
    status = json.loads(run(db, "user", "mfa", "status", "alice", "--json").output)
    assert status["totp"] == "active" and status["recovery_codes_left"] == 10 and status["totp_activated_at"]
    assert run(db, "user", "mfa", "reset", "alice", input="n\n").exit_code == 1  # asks first
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    out = run(db, "user", "mfa", "reset", "alice", "--yes")
    assert out.exit_code == 0, out.output
    assert "authenticator app removed, 10 recovery code(s) removed, 1 session(s) ended" in out.output
    assert '"event":"mfa_reset"' in caplog.text
    assert json.loads(run(db, "user", "mfa", "status", "alice", "--json").output)["totp"] == "none"


def test_unknown_user(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    for args in (("status", "nobody"), ("reset", "nobody", "--yes")):
        out = run(db, "user", "mfa", *args)
        assert out.exit_code == 1 and "no user 'nobody'" in out.output


def test_status_counts_and_reset_removes_passkeys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A lost security key: the administrator's reset removes passkeys too (even while the issuer, an IP
    address here, has passkeys off), so the password alone signs in again."""
    from ostiary.store.passkeys import PasskeyCredential

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(db, "user", "create", "bob", "--password", "a long password").exit_code == 0

    async def enrol(p: Any) -> None:
        from ostiary.app.passkeys import passkey_credentials

        user = await p.users.by_username("bob")
        for n in range(2):
            assert await passkey_credentials(p.stores).add(PasskeyCredential(
                credential_id=f"cred{n}", user_id=user.id, user_handle="aGFuZGxl", public_key=b"k", sign_count=0,
                transports=(), backup_eligible=False, backed_up=False, name=f"Key {n}", created_at=n))

    with_provider(db, enrol)
    assert "passkeys: 2" in run(db, "user", "mfa", "status", "bob").output
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    out = run(db, "user", "mfa", "reset", "bob", "--yes")
    assert out.exit_code == 0 and "2 passkey(s) removed" in out.output, out.output
    assert caplog.text.count('"event":"passkey_removed"') == 2
    assert json.loads(run(db, "user", "mfa", "status", "bob", "--json").output)["passkeys"] == 0
