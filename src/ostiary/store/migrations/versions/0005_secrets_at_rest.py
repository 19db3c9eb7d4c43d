"""Secrets at rest: private keys and sealed secrets encrypted under the secret key.

Private signing keys stored in plaintext are sealed; values sealed before the key id was written
(and under the key an older version generated into the database) are re-sealed under the current
secret key; that database-kept key is then deleted: the key no longer lives beside what it seals.
Needs the secret key (``ostiary serve`` and ``ostiary db upgrade`` pass it). Downgrading writes the
private keys back in plaintext; client_secret_jwt secrets and registration access tokens stay in the
new sealed form, which older versions cannot open (rotate those secrets after a downgrade).

Revision ID: 0005
Revises: 0004
"""

import logging

import sqlalchemy as sa
from alembic import context, op

from ostiary.store.sql.sealed import SealedColumn, Sealing, rewrap_sealed

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("ostiary")

# The sealed values as they are at this revision (later revisions add theirs to SEALED_COLUMNS, not here).
COLUMNS = (
    SealedColumn("signing_keys", "kid", "private_pem", legacy="plaintext"),
    SealedColumn("clients", "client_id", "sealed_secret", legacy="sealed"),
    SealedColumn("clients", "client_id", "data", legacy="sealed", json_field="sealed_registration_token"),
    SealedColumn("tokens", "digest", "successor", legacy="sealed"),  # added by 0004
)
state = sa.table("server_state", sa.column("name"), sa.column("value"))
keys = sa.table("signing_keys", sa.column("kid"), sa.column("private_pem"))


def _sealer() -> Sealing:
    sealer: Sealing | None = context.config.attributes.get("sealer")
    if sealer is None:
        raise RuntimeError("migration 0005 (secrets at rest) seals the stored private keys and needs the secret "
                           "key: run `ostiary db upgrade` or start the server (with OSTIARY_SECRET_KEY set on "
                           "PostgreSQL)")
    return sealer


def upgrade() -> None:
    conn = op.get_bind()
    legacy = conn.execute(sa.select(state.c.value).where(state.c.name == "secret_key")).scalar()
    if legacy is None and conn.execute(sa.select(sa.func.count()).select_from(keys)).scalar() == 0:
        return  # a new database: nothing stored yet
    sealer = _sealer()
    if legacy is not None:
        sealer.remember(legacy)  # what was sealed under it opens, and is re-sealed under the current key
    count = rewrap_sealed(conn, sealer, COLUMNS)
    if count.unreadable:
        log.warning("secrets at rest: %d sealed values open with no known key and were left as they were: %s",
                    len(count.unreadable), ", ".join(count.unreadable))
    conn.execute(sa.delete(state).where(state.c.name == "secret_key"))


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(keys.c.kid, keys.c.private_pem)).all()
    if not rows:
        return
    sealer = _sealer()
    for kid, value in rows:
        plain = sealer.unseal(value)
        if plain is not None:
            conn.execute(sa.update(keys).where(keys.c.kid == kid).values(private_pem=plain))
