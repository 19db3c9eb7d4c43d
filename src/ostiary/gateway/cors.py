"""CORS for routes that declare it (issue item 2): OPTIONS is answered only as a preflight."""

from __future__ import annotations

from .config import Cors

__all__ = ["actual_fields", "preflight_fields"]


def _header(fields: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in fields:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def preflight_fields(cors: Cors | None, fields: list[tuple[bytes, bytes]], methods: list[str]) -> dict[str, str] | None:
    """The preflight answer's fields, or None if this is no preflight for an allowed origin and method."""
    origin = _header(fields, b"origin")
    method = _header(fields, b"access-control-request-method")
    if cors is None or origin is None or method is None or origin not in cors.origins or method not in methods:
        return None
    asked = _header(fields, b"access-control-request-headers") or ""
    wanted = [h.strip().lower() for h in asked.split(",") if h.strip()]
    if any(h not in cors.headers for h in wanted):
        return None
    return {"access-control-allow-origin": origin, "access-control-allow-methods": ", ".join(methods),
            "access-control-allow-headers": ", ".join(cors.headers), "access-control-max-age": str(cors.max_age),
            "vary": "Origin"}


def actual_fields(cors: Cors | None, fields: list[tuple[bytes, bytes]]) -> dict[str, str]:
    origin = _header(fields, b"origin")
    if cors is None or origin is None or origin not in cors.origins:
        return {}
    return {"access-control-allow-origin": origin, "vary": "Origin",
            "access-control-expose-headers": "ratelimit, ratelimit-policy, retry-after, www-authenticate, x-request-id"}
