"""The guard's errors are the one tree of `ostiary.errors` (RFC 6750 §3.1 codes, plus the issuer being down).

GuardError (= OAuthError)
 ├── MissingToken        401, challenge without an error code (RFC 6750 §3.1)
 ├── InvalidRequest      400 invalid_request
 ├── InvalidToken        401 invalid_token
 ├── InsufficientScope   403 insufficient_scope (+ the scope needed)
 └── IssuerUnavailable   503 (or 401): keys or introspection could not be fetched
"""

from __future__ import annotations

from ..errors import GuardError, InsufficientScope, InvalidRequest, InvalidToken, IssuerUnavailable, MissingToken

__all__ = [
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "IssuerUnavailable",
    "MissingToken",
]
