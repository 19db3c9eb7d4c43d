"""Spare revision for later work in this release.

Placeholder, a no-op until the work that owns it fills it in.

Revision ID: 0012
Revises: 0011
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
