"""The app factory uvicorn's workers call: the configuration file named by ``OSTIARY_GATEWAY_CONFIG``.

Each worker process sets up its own logging: JSON lines on stderr for the access log
(``OSTIARY_GATEWAY_ACCESS_LOG=0`` turns it off), the gateway's messages and audit events.
"""

from __future__ import annotations

import logging
import os
import sys

from .app import Gateway
from .config import load_config

__all__ = ["app"]


def _logging(access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("ostiary.gateway.access", "ostiary.gateway", "ostiary.audit"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.setLevel(logging.INFO if name != "ostiary.gateway.access" or access_log else logging.WARNING)
        logger.propagate = False


def app() -> Gateway:
    path = os.environ["OSTIARY_GATEWAY_CONFIG"]
    _logging(os.environ.get("OSTIARY_GATEWAY_ACCESS_LOG", "1") != "0")
    return Gateway(load_config(path), config_path=path)
