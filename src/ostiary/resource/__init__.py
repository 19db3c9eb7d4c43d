"""The resource-server guard: verify bearer tokens and turn them into permissions.

Framework adapters live in submodules so that this package needs only the base dependencies:
``ostiary.resource.asgi`` (any ASGI app), ``ostiary.resource.starlette`` (Starlette / FastAPI
dependency) and ``ostiary.resource.flask`` (Flask decorator).
"""

from .claims import RFC9068_REQUIRED
from .errors import GuardError, InsufficientScope, InvalidRequest, InvalidToken, IssuerUnavailable, MissingToken
from .guard import ErrorResponse, Guard
from .introspection import Introspection
from .permissions import ClaimPermissions, PermissionPolicy, all_of, scope_permissions
from .principal import Principal
from .verifier import DEFAULT_ALGORITHMS, TokenVerifier

__all__ = [
    "DEFAULT_ALGORITHMS",
    "RFC9068_REQUIRED",
    "ClaimPermissions",
    "ErrorResponse",
    "Guard",
    "GuardError",
    "InsufficientScope",
    "Introspection",
    "InvalidRequest",
    "InvalidToken",
    "IssuerUnavailable",
    "MissingToken",
    "PermissionPolicy",
    "Principal",
    "TokenVerifier",
    "all_of",
    "scope_permissions",
]
