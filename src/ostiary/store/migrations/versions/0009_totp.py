"""Second factors: TOTP secrets (sealed) and recovery-code digests.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "totp_secrets",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("sealed_secret", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("last_step", sa.Integer),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("activated_at", sa.Integer),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recovery_codes")
    op.drop_table("totp_secrets")
