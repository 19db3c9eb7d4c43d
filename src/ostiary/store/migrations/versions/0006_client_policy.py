"""Authorization policy: every existing client gets a trust level and loses what that level forbids.

A client that came through /register (it has a registration access token) was self-registered; an
operator's client is `admin`. Scopes, grant types and admin-only metadata (skip_consent, audiences,
lifetimes, token format) the level does not allow are removed, each listed in the upgrade report
(docs/security.md "Existing registrations"). The policy comes from the caller (the server's
settings); run without one, the default policy applies. Client data lives in the JSON `data`
column, so no table changes.

Revision ID: 0006
Revises: 0005
"""

import time
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import context, op

from ostiary.store.protocols import Client
from ostiary.store.sql.engine import ClientUpgrade

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _default_upgrade() -> ClientUpgrade:
    from ostiary.config import Settings
    from ostiary.server.policy.clients import ClientUpgrade as Policy  # only when no policy was handed in

    return Policy.from_settings(Settings())


def upgrade() -> None:
    attributes = context.config.attributes
    check = attributes.get("client_upgrade") or _default_upgrade()
    report: list[str] = attributes.setdefault("report", [])
    conn = op.get_bind()
    clients = sa.table("clients", sa.column("client_id"), sa.column("data"), sa.column("updated_at"))
    rows = conn.execute(sa.text("SELECT * FROM clients ORDER BY client_id")).mappings().all()
    for row in rows:
        columns = {k: v for k, v in row.items() if k != "data"}
        client = Client.from_record({**orjson.loads(row["data"]), **columns})
        changed, removed = check(client)
        data = {k: v for k, v in changed.to_record().items() if k not in columns}
        values: dict[str, Any] = {"data": orjson.dumps(data).decode()}
        if removed:
            values["updated_at"] = int(time.time())
            report.append(f"client {client.client_id} ({changed.trust_level}, {client.client_name or 'unnamed'}): "
                          f"removed {', '.join(removed)}")
        conn.execute(clients.update().where(clients.c.client_id == client.client_id).values(**values))


def downgrade() -> None:
    pass  # what was removed is not restored: the report lists it
