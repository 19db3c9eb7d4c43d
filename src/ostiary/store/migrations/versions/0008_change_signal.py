"""Change signal: a version row so CLI changes reach every node within a second; revoked users.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import ostiary.store.sql.changes  # noqa: F401  (registers the tables in the shared metadata the schema test compares)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "change_signal",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])
    op.create_table(
        "revoked_subjects",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("revoked_at", sa.Integer, nullable=False),
        sa.Column("keep_until", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("revoked_subjects")
    op.drop_table("change_signal")
