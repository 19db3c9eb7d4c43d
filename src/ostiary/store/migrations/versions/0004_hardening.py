"""Hardening: grant-level revocation marks (a revoked family stays revoked for tokens issued in a race).

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


def downgrade() -> None:
    op.drop_table("revoked_grants")
