"""Spare revision for later work in this release.

Placeholder, a no-op until the work that owns it fills it in.

Revision ID: 0013
Revises: 0012
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
