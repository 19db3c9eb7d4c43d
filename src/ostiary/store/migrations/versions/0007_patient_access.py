"""Patient access: users' access facts (fhirUser, roles, patient links, practitioner lists).

Revision ID: 0007
Revises: 0006
"""

import json
import time

import sqlalchemy as sa
from alembic import op

import ostiary.store.sql.access  # noqa: F401  (registers the table in the shared metadata the schema test compares)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create()
    _move_fhir_user_claims()


def _create() -> None:
    op.create_table(
        "user_access",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("fhir_user", sa.String(200)),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("patients", sa.Text, nullable=False),
        sa.Column("patient_group", sa.String(64)),
        sa.Column("all_patients", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )


def _move_fhir_user_claims() -> None:
    """A fhirUser profile claim becomes an access fact (the claim decided nothing from now on): the
    reference only, no patients (fail closed), except the demo user, who keeps seeing every patient."""
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.String), sa.column("username", sa.String),
                     sa.column("claims", sa.Text))
    access = sa.table("user_access", sa.column("user_id", sa.String), sa.column("fhir_user", sa.String),
                      sa.column("roles", sa.Text), sa.column("patients", sa.Text),
                      sa.column("patient_group", sa.String), sa.column("all_patients", sa.Boolean),
                      sa.column("updated_at", sa.Integer))
    for row in conn.execute(sa.select(users.c.id, users.c.username, users.c.claims)).all():
        claims = json.loads(row.claims or "{}")
        value = claims.pop("fhirUser", None) if isinstance(claims, dict) else None
        if not isinstance(value, str):
            continue
        parts = value.rstrip("/").split("/")
        reference = "/".join(parts[-2:]) if len(parts) >= 2 else None
        demo = row.username == "demo"
        conn.execute(access.insert().values(
            user_id=row.id, fhir_user=reference, roles=json.dumps(["launch"] if demo else []), patients="[]",
            patient_group=None, all_patients=demo, updated_at=int(time.time())))
        conn.execute(users.update().where(users.c.id == row.id).values(claims=json.dumps(claims)))


def downgrade() -> None:
    op.drop_table("user_access")
