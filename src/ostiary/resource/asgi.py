"""Pure ASGI middleware: verifies the bearer token of every HTTP request (no framework needed).

The principal goes in ``scope["ostiary.principal"]`` and ``scope["state"]["principal"]`` (which
Starlette and FastAPI show as ``request.state.principal``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from .errors import GuardError, MissingToken
from .guard import Guard

__all__ = ["BearerMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BearerMiddleware:
    """Rejects requests without a valid token (RFC 6750 responses), except on ``exempt`` paths.

    With ``required=False`` a request without any token passes with no principal; a bad token is
    still refused.
    """

    def __init__(
        self, app: ASGIApp, guard: Guard, *, required: bool = True, exempt: Collection[str] = ()
    ) -> None:
        self.app = app
        self.guard = guard
        self.required = required
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        authorization = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"authorization"]
        query = scope.get("query_string", b"")
        query_tokens = parse_qs(query.decode("latin-1"), keep_blank_values=True).get("access_token", []) if (
            b"access_token" in query
        ) else []
        scope["ostiary.guard"] = self.guard
        try:
            principal = await self.guard.aauthenticate(authorization, query_tokens)
        except MissingToken:
            if self.required:
                await self._refuse(MissingToken(), send)
                return
            principal = None
        except GuardError as exc:
            await self._refuse(exc, send)
            return
        scope["ostiary.principal"] = principal
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _refuse(self, exc: GuardError, send: Send) -> None:
        response = self.guard.error_response(exc)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
