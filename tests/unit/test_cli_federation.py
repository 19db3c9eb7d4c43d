"""`ostiary user links NAME [--remove PROVIDER:SUBJECT]`: a user's linked upstream identities, and the
administrator's removal (a compromised upstream account), audited."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from ostiary.store.federation import LinkedIdentity
from tests.unit.test_cli_mfa import clean_environment, run, with_provider

__all__ = ["clean_environment"]


def test_list_and_remove(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(db, "user", "create", "uma", "--password", "a long password for uma").exit_code == 0
    assert "uma: no linked identities" in run(db, "user", "links", "uma").output

    async def link(p: object) -> None:
        user = await p.users.by_username("uma")  # type: ignore[attr-defined]
        now = int(time.time())
        await p.federated_accounts.links.add(LinkedIdentity("hospital", "u-1", user.id, now, now,  # type: ignore
                                                            "uma@hospital.example"))

    with_provider(db, link)
    out = run(db, "user", "links", "uma")
    assert out.exit_code == 0 and "hospital:u-1  uma@hospital.example" in out.output
    assert json.loads(run(db, "user", "links", "uma", "--json").output)[0]["subject"] == "u-1"
    assert run(db, "user", "links", "uma", "--remove", "hospital:other").exit_code == 1
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    out = run(db, "user", "links", "uma", "--remove", "hospital:u-1")
    assert out.exit_code == 0 and "no linked identities" in out.output
    assert '"event":"federation_unlinked"' in caplog.text and '"by":"administrator"' in caplog.text
    assert run(db, "user", "links", "nobody").exit_code == 1
