"""Spare revision for later work in this release.

Placeholder, a no-op until the work that owns it fills it in.

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
