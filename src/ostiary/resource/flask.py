"""Flask decorator: ``@require_token(guard, "read")``; the principal is ``flask.g.principal``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from flask import Response, g, request

from .errors import GuardError
from .guard import Guard

__all__ = ["require_token"]

P = ParamSpec("P")
R = TypeVar("R")


def require_token(
    guard: Guard, *scopes: str, permissions: Sequence[str] = ()
) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """Refuse the request (RFC 6750) unless its token is valid and grants every scope named."""

    def decorator(view: Callable[P, R]) -> Callable[P, R | Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            form_tokens: list[str] = []
            if request.mimetype == "application/x-www-form-urlencoded":
                form_tokens = request.form.getlist("access_token")
            try:
                principal = guard.authenticate(
                    request.headers.getlist("Authorization"), request.args.getlist("access_token"), form_tokens
                )
                Guard.require(principal, scopes, permissions)
            except GuardError as exc:
                error = guard.error_response(exc)
                return Response(error.body, status=error.status, headers=list(error.headers))
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper

    return decorator
