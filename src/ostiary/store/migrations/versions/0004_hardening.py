"""Hardening: grant-level revocation marks (a revoked family stays revoked for tokens issued in a race),
and the sealed successor of a rotated refresh token (rotation grace period).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_grants",
        sa.Column("grant_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("successor", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("successor")
    op.drop_table("revoked_grants")
