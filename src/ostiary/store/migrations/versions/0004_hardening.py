"""Hardening: single-use consumption, grant-level revocation, throttling counters.

Placeholder, a no-op until the work that owns it fills it in.

Revision ID: 0004
Revises: 0003
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
