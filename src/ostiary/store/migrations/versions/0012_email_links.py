"""Email links: password-reset and email-verification links, stored as digests, used once.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_links",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_email_links_user_id", "email_links", ["user_id"])
    op.create_index("ix_email_links_expires_at", "email_links", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_email_links_expires_at", "email_links")
    op.drop_index("ix_email_links_user_id", "email_links")
    op.drop_table("email_links")
