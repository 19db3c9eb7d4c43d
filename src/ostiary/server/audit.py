"""Audit events: one structured log record per security decision (logger `ostiary.audit`).

Records are JSON objects in the message, so any log pipeline can index them. Secrets and token
values are never passed here; tokens are named by `jti` or digest prefix only.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

__all__ = ["audit"]

log = logging.getLogger("ostiary.audit")


def audit(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Emit `event` with its fields (skipped cheaply when the level is disabled)."""
    if log.isEnabledFor(level):
        log.log(level, orjson.dumps({"event": event, **fields}, default=str).decode())
