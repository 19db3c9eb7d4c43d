"""Every value sealed under the secret key, in one table, and the rewrap that re-seals them all.

A new kind of sealed secret (TOTP seeds, upstream client secrets, SMTP credentials) adds one entry
to ``SEALED_COLUMNS``; then ``ostiary keys rewrap`` re-seals it too (a migration that seals existing
plaintext calls ``rewrap_sealed`` with its own fixed list). The statements name their columns
(``sa.table``), not the current schema, so a migration using them keeps working after later
migrations change those tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["SEALED_COLUMNS", "RewrapCount", "SealedColumn", "Sealing", "is_plaintext", "rewrap", "rewrap_sealed"]


class Sealing(Protocol):
    """What the store needs of ``ostiary.server.credentials.Sealer``."""

    def seal(self, plaintext: str) -> str: ...

    def unseal(self, sealed: str) -> str | None: ...

    def is_current(self, sealed: str) -> bool: ...

    def remember(self, old_key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SealedColumn:
    table: str
    key: str
    column: str
    # what a value not yet sealed under a key id is: plaintext from before secrets at rest, or
    # sealed in the first format (plain base64url) that only some known key opens
    legacy: Literal["plaintext", "sealed"]
    json_field: str | None = None  # the value is this field of a JSON object in `column`


SEALED_COLUMNS = (
    SealedColumn("signing_keys", "kid", "private_pem", legacy="plaintext"),
    SealedColumn("clients", "client_id", "sealed_secret", legacy="sealed"),
    SealedColumn("clients", "client_id", "data", legacy="sealed", json_field="sealed_registration_token"),
    SealedColumn("tokens", "digest", "successor", legacy="sealed"),  # refresh-token rotation grace period
    SealedColumn("totp_secrets", "user_id", "sealed_secret", legacy="sealed"),  # TOTP seeds (RFC 6238)
)


@dataclass
class RewrapCount:
    resealed: int = 0  # now sealed under the current key (including plaintext sealed for the first time)
    current: int = 0  # already sealed under the current key
    unreadable: list[str] = field(default_factory=list)  # "table.column key": no known key opens it (left as is)


def is_plaintext(private_pem: str) -> bool:
    """A private key stored before secrets at rest (a PEM, which no sealed value starts like)."""
    return private_pem.startswith("-----BEGIN")


def _reseal(value: str, legacy: str, sealer: Sealing) -> str | None:
    """The value sealed under the current key, or None if no known key opens it."""
    if legacy == "plaintext" and is_plaintext(value):
        return sealer.seal(value)
    opened = sealer.unseal(value)
    return sealer.seal(opened) if opened is not None else None


def rewrap_sealed(conn: Connection, sealer: Sealing, columns: Sequence[SealedColumn] = SEALED_COLUMNS) -> RewrapCount:
    """Re-seal every sealed value under the current key, in the caller's transaction."""
    count = RewrapCount()
    for entry in columns:
        table = sa.table(entry.table, sa.column(entry.key), sa.column(entry.column))
        query = sa.select(table.c[entry.key], table.c[entry.column]).where(table.c[entry.column].is_not(None))
        for key, raw in conn.execute(query).all():
            data = orjson.loads(raw) if entry.json_field and raw else {}
            value = data.get(entry.json_field) if entry.json_field else raw
            if not isinstance(value, str) or sealer.is_current(value):
                count.current += isinstance(value, str)
                continue
            new = _reseal(value, entry.legacy, sealer)
            if new is None:
                count.unreadable.append(f"{entry.table}.{entry.json_field or entry.column} {key}")
                continue
            new_raw = orjson.dumps({**data, entry.json_field: new}).decode() if entry.json_field else new
            # unless the row changed meanwhile (a node rotated that secret): compare with what was read
            result = conn.execute(sa.update(table).where(table.c[entry.key] == key, table.c[entry.column] == raw)
                                  .values({entry.column: new_raw}))
            count.resealed += bool(result.rowcount)
    return count


async def rewrap(engine: AsyncEngine, sealer: Sealing) -> RewrapCount:
    """``rewrap_sealed`` over every entry of ``SEALED_COLUMNS``, in one transaction."""
    async with engine.begin() as conn:
        return await conn.run_sync(rewrap_sealed, sealer)
