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
    # A grant (one authorization) ties together every token it produced: a replayed code or a
    # reused refresh token revokes them all (RFC 9700 §4.14, RFC 6749 §4.1.2).
    Column("grant_id", String(64)),
    Column("consumed_at", Integer),  # refresh tokens: set when rotated
    # refresh tokens, with a rotation grace period only: the successor response, sealed
    Column("successor", Text),
    Index("ix_tokens_client_id", "client_id"),
    Index("ix_tokens_expires_at", "expires_at"),
    Index("ix_tokens_grant_id", "grant_id"),
)

revoked_jtis = Table(
    "revoked_jtis",
    metadata,
    Column("jti", String(128), primary_key=True),
    Column("expires_at", Integer, nullable=False),
)

# A grant (family) revoked as a whole: checked at every use and after every issue, so a token
# minted by a race winner while the family was being revoked is revoked too (RFC 9700 §4.14.2).
revoked_grants = Table(
    "revoked_grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
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

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),  # the stable `sub`
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("claims", Text, nullable=False),  # JSON: name, email, email_verified, ...
    Column("created_at", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the cookie value
    Column("sid", String(64), nullable=False, unique=True),  # public id, the `sid` claim
    Column("user_id", String(64), nullable=False),
    Column("auth_time", Integer, nullable=False),
    Column("amr", Text, nullable=False),
    Column("acr", String(64)),
    Column("clients", Text, nullable=False),  # JSON list of client_ids that got tokens (logout)
    Column("expires_at", Integer, nullable=False),
    Index("ix_sessions_user_id", "user_id"),
)

consents = Table(
    "consents",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("client_id", String(255), primary_key=True),
    Column("scope", Text, nullable=False),
    Column("created_at", Integer, nullable=False),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("client_id", String(255), nullable=False),
    Column("grant_id", String(64), nullable=False),
    Column("data", Text, nullable=False),  # JSON: user, redirect_uri, scope, nonce, PKCE, auth facts
    Column("expires_at", Integer, nullable=False),
    Column("consumed_at", Integer),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("data", Text, nullable=False),  # JSON: the validated authorization request
    Column("expires_at", Integer, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(320), primary_key=True),  # "user:<name>" or "ip:<address>"
    Column("count", Integer, nullable=False),
    Column("window_start", Integer, nullable=False),
    Column("locked_until", Integer, nullable=False),
)

# W3C WebAuthn Level 2 §4 credential records (docs/sign-in.md "Passkeys"); several per user.
passkey_credentials = Table(
    "passkey_credentials",
    metadata,
    Column("credential_id", String(1400), primary_key=True),  # base64url; WebAuthn ids are at most 1023 bytes
    Column("user_id", String(64), nullable=False),
    Column("user_handle", String(128), nullable=False),  # base64url of the WebAuthn user.id
    Column("public_key", Text, nullable=False),  # base64url of the COSE_Key
    Column("sign_count", Integer, nullable=False),
    Column("transports", Text, nullable=False),  # JSON list
    Column("backup_eligible", Boolean, nullable=False),
    Column("backed_up", Boolean, nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_at", Integer, nullable=False),
    Column("last_used_at", Integer),
    Index("ix_passkey_credentials_user_id", "user_id"),
)

# Challenges of WebAuthn ceremonies under way: single-use (taken by one DELETE ... RETURNING), short-lived.
passkey_challenges = Table(
    "passkey_challenges",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the challenge
    Column("purpose", String(16), nullable=False),
    Column("binding", String(64), nullable=False),  # interaction id or session sid
    Column("user_id", String(64)),
    Column("user_handle", String(128)),
    Column("expires_at", Integer, nullable=False),
    Index("ix_passkey_challenges_expires_at", "expires_at"),
)

# Second factors (store/mfa.py). One TOTP secret per user, sealed; `last_step` makes each RFC 6238
# time step usable once (a conditional UPDATE moves it forward only).
totp_secrets = Table(
    "totp_secrets",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("sealed_secret", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("last_step", Integer),
    Column("created_at", Integer, nullable=False),
    Column("activated_at", Integer),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("digest", String(64), primary_key=True),  # SHA-256 hex of the normalised code
    Column("created_at", Integer, nullable=False),
)

# Password-reset and email-verification links (store/email_links.py): a digest, never the secret.
email_links = Table(
    "email_links",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),  # "reset" or "verify"
    Column("user_id", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("expires_at", Integer, nullable=False),
    Index("ix_email_links_user_id", "user_id"),
    Index("ix_email_links_expires_at", "expires_at"),
)

# Federation: an upstream OpenID Connect identity (provider id, upstream `sub`) linked to a local user.
federated_identities = Table(
    "federated_identities",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("label", String(255), nullable=False),
    Column("created_at", Integer, nullable=False),
    Column("last_used", Integer, nullable=False),
    Index("ix_federated_identities_user_id", "user_id"),
)
