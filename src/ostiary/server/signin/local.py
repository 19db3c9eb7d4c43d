"""The local sign-in's `return_to`: a path on this server, never anywhere else (no open redirect).

Refused: absolute URLs (`https://x`, `javascript:...`), scheme-relative ones (`//host`), the backslash
forms browsers read as `//host` (`/\\host`), control characters and whitespace (a browser drops tabs and
newlines, turning `/\\t/host` into `//host`), and anything longer than 512 characters.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["ACCOUNT_PAGE", "MAX_RETURN_TO", "exempt_from_required_acr", "safe_return_to"]

MAX_RETURN_TO = 512
ACCOUNT_PAGE = "/account"  # where second factors are enrolled
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")  # controls, space, DEL, backslash


def safe_return_to(value: str | None) -> str | None:
    """`value` when it is a local path (with an optional query), else None."""
    if not value or len(value) > MAX_RETURN_TO or not value.startswith("/") or value.startswith("//"):
        return None
    if _UNSAFE.search(value) or "%5c" in value.lower() or "%2f%2f" in value.lower():
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    return value


def exempt_from_required_acr(return_to: str) -> bool:
    """Whether a local sign-in to `return_to` is exempt from `[signin] required_acr`: only the account
    page, so a user can always reach the page where second factors are enrolled. The launcher and the
    developer portal need the level applications need."""
    return urlsplit(return_to).path == ACCOUNT_PAGE
