"""httpx.Auth for any token source: sets the Bearer header and retries once, with a fresh token, after a 401."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Protocol

import httpx

from .token import Token

__all__ = ["TokenAuth", "TokenSource"]


class TokenSource(Protocol):
    """What the auth adapters need: a current token (sync and async) and a way to drop a refused one."""

    def get_token(self) -> Token: ...

    async def aget_token(self) -> Token: ...

    def invalidate(self, token: Token) -> None: ...


class TokenAuth(httpx.Auth):
    requires_request_body = True  # the body is sent again on the retry

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def __repr__(self) -> str:
        return f"TokenAuth({self.source!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.source.get_token()
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code == 401:  # RFC 6750 §3.1 invalid_token: the token may have been revoked
            self.source.invalidate(token)
            request.headers["Authorization"] = f"Bearer {self.source.get_token().access_token}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.source.aget_token()
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code == 401:
            self.source.invalidate(token)
            request.headers["Authorization"] = f"Bearer {(await self.source.aget_token()).access_token}"
            yield request
