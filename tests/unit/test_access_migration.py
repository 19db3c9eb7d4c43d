"""Migration 0007 (issue 8 item 1): a fhirUser profile claim becomes an access fact; nothing else is granted."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from alembic import command
from sqlalchemy import text

from ostiary.store.sql.access import SqlAccessStore
from ostiary.store.sql.engine import _alembic_config, make_engine, upgrade


async def test_0007_moves_fhir_user_claims_to_access_facts(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(_alembic_config(c, None, []), "0006"))
        now = int(time.time())
        for uid, name, claims in (("u1", "dr", {"name": "Dr", "fhirUser": "https://x.example/fhir/Practitioner/p1"}),
                                  ("u2", "demo", {"fhirUser": "https://x.example/fhir/Practitioner/prac-01"}),
                                  ("u3", "plain", {"name": "Plain"})):
            await conn.execute(text("INSERT INTO users (id, username, disabled, claims, created_at, updated_at) "
                                    "VALUES (:i, :u, false, :c, :t, :t)"),
                               {"i": uid, "u": name, "c": orjson.dumps(claims).decode(), "t": now})
    await upgrade(engine)
    store = SqlAccessStore(engine)
    dr, demo, plain = (await store.get("u1"), await store.get("u2"), await store.get("u3"))
    assert dr is not None and dr.fhir_user == "Practitioner/p1" and not dr.all_patients and dr.patients == ()
    assert demo is not None and demo.all_patients and demo.roles == {"launch"}
    assert plain is None
    async with engine.connect() as conn:
        claims = (await conn.execute(text("SELECT claims FROM users WHERE id = 'u1'"))).scalar_one()
    assert orjson.loads(claims) == {"name": "Dr"}
    await engine.dispose()
