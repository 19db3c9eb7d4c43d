"""Initial schema: clients, signing keys, tokens, revocations, replay cache, server state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(255), primary_key=True),
        sa.Column("secret_digest", sa.String(64)),
        sa.Column("sealed_secret", sa.Text),
        sa.Column("registration_token_digest", sa.String(64)),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(128), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("cert_pem", sa.Text),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("publish_until", sa.Integer),
    )
    op.create_table(
        "tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("jti", sa.String(128), nullable=False),
        sa.Column("claims", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_tokens_client_id", "tokens", ["client_id"])
    op.create_index("ix_tokens_expires_at", "tokens", ["expires_at"])
    op.create_table(
        "revoked_jtis",
        sa.Column("jti", sa.String(128), primary_key=True),
        sa.Column("expires_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "replay",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "server_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("server_state", "replay", "revoked_jtis", "tokens", "signing_keys", "clients"):
        op.drop_table(name)
