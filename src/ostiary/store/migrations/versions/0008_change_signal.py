"""Change signal: a version row so CLI changes reach every node within a second.

Placeholder, a no-op until the work that owns it fills it in.

Revision ID: 0008
Revises: 0007
"""

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
