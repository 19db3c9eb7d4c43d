"""The secret key that seals what must be recoverable: where it comes from, and its rotation (rewrap).

``OSTIARY_SECRET_KEY`` when set (required with PostgreSQL: every node must open what another
sealed). Unset on SQLite, a key is generated once into a 0600 file beside the database file, so a
copy of the database alone (a backup, a stolen file) opens nothing. See docs/security.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ConfigError, Settings
from ..server.audit import audit
from ..server.credentials import new_secret
from ..store.memory import MEMORY_URL
from ..store.sql.engine import sqlite_file
from ..store.sql.sealed import rewrap as rewrap_columns

if TYPE_CHECKING:
    from .provider import Provider

__all__ = ["KEY_FILE_SUFFIX", "RewrapReport", "load_secret_key", "rewrap", "secret_key_file", "secret_keys"]

log = logging.getLogger("ostiary")

KEY_FILE_SUFFIX = ".secret-key"
_PENDING = ".next"  # a rotation's new key, until every value is re-sealed under it

POSTGRES_NEEDS_KEY = (
    "secret_key is required with PostgreSQL: every node must seal and open secrets with the same key. "
    "Set OSTIARY_SECRET_KEY (or OSTIARY_SECRET_KEY_FILE) to the same value on every node, for example to "
    "the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


def secret_key_file(database_url: str) -> Path | None:
    """Where a generated key lives: beside the SQLite database file (None without a file)."""
    if database_url == MEMORY_URL:
        return None
    path = sqlite_file(database_url)
    return path.with_name(path.name + KEY_FILE_SUFFIX) if path is not None else None


def _read(path: Path) -> str:
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < 32:
        raise ConfigError(f"{path} does not hold a secret key (at least 32 characters)")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users: chmod 600 it", path)
    return value


def _read_or_create(path: Path) -> str:
    """The key in ``path``, created 0600 if missing; processes starting together agree on one."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(new_secret() + "\n")
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(tmp, path)  # atomic, never replaces
        finally:
            os.unlink(tmp)
    return _read(path)


def secret_keys(settings: Settings) -> tuple[str, tuple[str, ...]]:
    """The sealing key and the earlier keys that still open; raises ConfigError on PostgreSQL without one."""
    previous = tuple(k for k in (settings.secret_key_previous,) if k)
    if settings.secret_key:
        return settings.secret_key, previous
    if settings.database_url.startswith("postgres"):
        raise ConfigError(POSTGRES_NEEDS_KEY)
    path = secret_key_file(settings.database_url)
    if path is None:  # an in-memory database: the key lives exactly as long
        return new_secret(), previous
    pending = path.with_name(path.name + _PENDING)
    if pending.exists():  # a rewrap stopped half-way: what it re-sealed still opens
        previous += (_read(pending),)
    return _read_or_create(path), previous


def load_secret_key(provider: Provider) -> None:
    """Install the sealing key (before migrations, which seal what older versions kept in plaintext)."""
    key, previous = secret_keys(provider.settings)
    provider.sealer.install(key, previous)


@dataclass(frozen=True, slots=True)
class RewrapReport:
    resealed: int
    current: int
    unreadable: tuple[str, ...]
    key_file: Path | None  # the generated key file that now holds the new key


async def rewrap(provider: Provider) -> RewrapReport:
    """Re-seal every sealed value under the current key (from ``secret_key_previous``), or, with a
    generated key file, under a new generated key that then replaces the file's."""
    settings = provider.settings
    path = None if settings.secret_key else secret_key_file(settings.database_url)
    pending = path.with_name(path.name + _PENDING) if path is not None else None
    if path is not None and pending is not None:
        provider.sealer.install(_read_or_create(pending), previous=(_read(path),))
    count = await rewrap_columns(provider.engine, provider.sealer)
    if path is not None and pending is not None:
        os.replace(pending, path)  # only now: until here the old key opened what was not re-sealed
    audit("secrets_rewrapped", resealed=count.resealed, current=count.current, unreadable=len(count.unreadable))
    return RewrapReport(count.resealed, count.current, tuple(count.unreadable), path)
