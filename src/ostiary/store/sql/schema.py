"""Tables (SQLAlchemy Core). Migrations in ../migrations create exactly these; a test compares them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("secret_digest", String(64)),
    Column("sealed_secret", Text),
    Column("registration_token_digest", String(64)),
    Column("data", Text, nullable=False),  # JSON: every other metadata field
    Column("created_at", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(128), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("cert_pem", Text),
    Column("created_at", Integer, nullable=False),
    Column("publish_until", Integer),
)

tokens = Table(
    "tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("jti", String(128), nullable=False),
    Column("claims", Text, nullable=False),
    Column("expires_at", Integer, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Index("ix_tokens_client_id", "client_id"),
    Index("ix_tokens_expires_at", "expires_at"),
)

revoked_jtis = Table(
    "revoked_jtis",
    metadata,
    Column("jti", String(128), primary_key=True),
    Column("expires_at", Integer, nullable=False),
)

replay = Table(
    "replay",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("expires_at", Integer, nullable=False),
)

server_state = Table(
    "server_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
