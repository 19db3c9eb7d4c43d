"""Starlette / FastAPI dependency: ``Depends(require_scopes("read", guard=guard))``.

Works with or without BearerMiddleware: if the middleware already verified the token, its
principal is used; otherwise the dependency verifies the token itself (async, no thread hop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request

from .errors import GuardError
from .guard import Guard
from .principal import Principal

__all__ = ["require_scopes"]


def _http_error(guard: Guard, exc: GuardError) -> HTTPException:
    response = guard.error_response(exc)
    headers = {k: v for k, v in response.headers if k in ("www-authenticate", "retry-after", "cache-control")}
    return HTTPException(status_code=response.status, detail=exc.description or exc.error or None, headers=headers)


def require_scopes(
    *scopes: str, guard: Guard | None = None, permissions: Sequence[str] = ()
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency returning the caller's Principal once it has every scope (and permission) named.

    Raises (as HTTPException): 401 / 400 / 403 / 503 with the RFC 6750 ``WWW-Authenticate`` header.
    """

    async def dependency(request: Request) -> Principal:
        active = guard or request.scope.get("ostiary.guard") or getattr(request.app.state, "ostiary_guard", None)
        if not isinstance(active, Guard):
            raise RuntimeError("require_scopes needs guard=..., BearerMiddleware, or app.state.ostiary_guard")
        principal = request.scope.get("ostiary.principal")
        try:
            if not isinstance(principal, Principal):
                principal = await active.aauthenticate(
                    request.headers.getlist("authorization"), request.query_params.getlist("access_token")
                )
                request.scope["ostiary.principal"] = principal
                request.state.principal = principal
            Guard.require(principal, scopes, permissions)
        except GuardError as exc:
            raise _http_error(active, exc) from None
        return principal

    return dependency
