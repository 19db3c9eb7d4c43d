"""Secrets at rest: private keys and sealed secrets encrypted under the secret key.

Placeholder, a no-op until the work that owns it fills it in.

Revision ID: 0005
Revises: 0004
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
