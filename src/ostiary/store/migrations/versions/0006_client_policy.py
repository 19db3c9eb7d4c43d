"""Authorization policy: client trust levels, admin-only metadata, resource servers.

Placeholder, a no-op until the work that owns it fills it in.

Revision ID: 0006
Revises: 0005
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
