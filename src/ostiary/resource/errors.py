"""Guard errors, one per RFC 6750 §3.1 error code, plus the two cases RFC 6750 leaves open.

GuardError
 ├── MissingToken        401, challenge without an error code (RFC 6750 §3.1)
 ├── InvalidRequest      400 invalid_request
 ├── InvalidToken        401 invalid_token
 ├── InsufficientScope   403 insufficient_scope (+ the scope needed)
 └── IssuerUnavailable   503 (or 401): keys or introspection could not be fetched
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "IssuerUnavailable",
    "MissingToken",
]


class GuardError(Exception):
    """A request the guard refuses; ``description`` is short and safe to show the caller."""

    error: ClassVar[str] = ""
    status_code: ClassVar[int] = 401

    def __init__(self, description: str = "") -> None:
        super().__init__(description or self.error)
        self.description = description


class MissingToken(GuardError):
    """No bearer token at all: RFC 6750 §3.1 says answer without an error code."""

    status_code = 401


class InvalidRequest(GuardError):
    error = "invalid_request"
    status_code = 400


class InvalidToken(GuardError):
    error = "invalid_token"
    status_code = 401


class InsufficientScope(GuardError):
    error = "insufficient_scope"
    status_code = 403

    def __init__(self, description: str = "", scope: tuple[str, ...] = ()) -> None:
        super().__init__(description)
        self.scope = scope


class IssuerUnavailable(GuardError):
    """The JWKS or introspection endpoint is down, slow or answers nonsense."""

    error = "temporarily_unavailable"
    status_code = 503
