"""Paths as the upstream will see them (issue item 2): decode once, refuse anything ambiguous, match by segment.

The raw request target is split on ``/`` *before* decoding, so an encoded slash can never create or hide a
segment; every form that some upstream would read differently from us is refused with 400 rather than
"fixed": dot segments (also encoded), encoded slashes and backslashes, empty segments (``//``), NUL and
other control characters, invalid percent-encoding and non-UTF-8. What remains decodes unambiguously,
so the raw path we forward is exactly the path we checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from .config import Route

__all__ = ["CheckedPath", "PathRefused", "check_path", "match_route", "upstream_path"]

_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN_ESCAPES = re.compile(rb"%(2[eEfF]|5[cC]|00)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PathRefused(ValueError):
    """A request path the gateway will not pass on (400)."""


@dataclass(frozen=True, slots=True)
class CheckedPath:
    path: str  # decoded, e.g. "/notes/a b"
    raw: bytes  # as received, e.g. b"/notes/a%20b"
    segments: tuple[str, ...]  # decoded segments ("" last for a trailing slash)
    raw_segments: tuple[bytes, ...]


def check_path(raw: bytes) -> CheckedPath:
    """The decoded path, or PathRefused saying which rule it breaks."""
    if not raw.startswith(b"/"):
        raise PathRefused("the path must start with /")
    if b"\\" in raw:
        raise PathRefused("backslashes are not allowed in the path")
    if _FORBIDDEN_ESCAPES.search(raw):
        raise PathRefused("encoded dots, slashes, backslashes and NUL are not allowed in the path")
    if _ESCAPE.search(raw):
        raise PathRefused("invalid percent-encoding in the path")
    raw_segments = tuple(raw[1:].split(b"/"))
    segments: list[str] = []
    for i, segment in enumerate(raw_segments):
        if segment == b"" and i != len(raw_segments) - 1:
            raise PathRefused("empty path segments (//) are not allowed")
        try:
            text = unquote_to_bytes(segment).decode("utf-8")
        except UnicodeDecodeError:
            raise PathRefused("the path is not valid UTF-8") from None
        if text in (".", ".."):
            raise PathRefused("dot segments are not allowed in the path")
        if _CONTROL.search(text):
            raise PathRefused("control characters are not allowed in the path")
        segments.append(text)
    return CheckedPath("/" + "/".join(segments), raw, tuple(segments), raw_segments)


def _prefix_segments(prefix: str) -> tuple[str, ...]:
    return tuple(prefix[1:].split("/")) if prefix else ()


def match_route(routes: Sequence[Route], path: CheckedPath) -> Route | None:
    """The route with the longest prefix that ends on a segment boundary of ``path``."""
    best: Route | None = None
    best_len = -1
    for route in routes:
        prefix = _prefix_segments(route.path)
        if len(prefix) > best_len and path.segments[: len(prefix)] == prefix:
            best, best_len = route, len(prefix)
    return best


def upstream_path(route: Route, path: CheckedPath, base_path: str) -> bytes:
    """The raw path to send: the checked raw path, without the route prefix if ``strip_prefix``."""
    raw_segments = path.raw_segments
    if route.strip_prefix:
        raw_segments = raw_segments[len(_prefix_segments(route.path)):]
    tail = b"/" + b"/".join(raw_segments) if raw_segments else b"/"
    base = base_path.rstrip("/").encode()
    return base + tail if base else tail
