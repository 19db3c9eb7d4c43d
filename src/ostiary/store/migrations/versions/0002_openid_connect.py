"""OpenID Connect: users, SSO sessions, consents, authorization codes, interactions, login throttling,
and grant families on tokens.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("grant_id", sa.String(64)))
        batch.add_column(sa.Column("consumed_at", sa.Integer))
        batch.create_index("ix_tokens_grant_id", ["grant_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("claims", sa.Text, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("sid", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("auth_time", sa.Integer, nullable=False),
        sa.Column("amr", sa.Text, nullable=False),
        sa.Column("acr", sa.String(64)),
        sa.Column("clients", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "consents",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "authorization_codes",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=False),
        sa.Column("consumed_at", sa.Integer),
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for name in ("login_failures", "interactions", "authorization_codes", "consents", "sessions", "users"):
        op.drop_table(name)
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_grant_id")
        batch.drop_column("consumed_at")
        batch.drop_column("grant_id")
