"""Federation: identities at upstream OpenID Connect providers linked to local users.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federated_identities",
        sa.Column("provider", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("last_used", sa.Integer, nullable=False),
    )
    op.create_index("ix_federated_identities_user_id", "federated_identities", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_federated_identities_user_id", "federated_identities")
    op.drop_table("federated_identities")
