"""Client credentials token source: one cached token, refreshed early, fetched once however many need it.

The token is refreshed when ``refresh_ratio`` (80%) of its lifetime has passed. While it is still
valid, only one caller refreshes and the others keep using the current token; once it has expired
they wait for the single request in flight (``threading.Lock`` / ``asyncio.Lock``). After a 401 the
caller ``invalidate``s the token it used, and the next ``get_token`` fetches a new one, once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx

from ._per_loop import AsyncClients, PerLoop
from .auth_methods import ClientAuth
from .discovery import DiscoveryError, afetch_metadata, fetch_metadata
from .token import Token, TokenError, atoken_request, token_request

if TYPE_CHECKING:
    from .httpx_auth import TokenAuth
    from .requests_auth import RequestsTokenAuth

__all__ = ["ClientCredentials"]

log = logging.getLogger("ostiary.client")


class ClientCredentials:
    """Tokens for a service calling APIs as itself (RFC 6749 §4.4). Raises TokenError on failure."""

    def __init__(
        self,
        auth: ClientAuth,
        *,
        token_url: str | None = None,
        issuer: str | None = None,
        scope: str | None = None,
        resource: str | None = None,
        refresh_ratio: float = 0.8,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
        async_http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token_url is None and issuer is None:
            raise ValueError("give token_url, or issuer to discover it")
        self.auth = auth
        self.token_url = token_url
        self.issuer = issuer
        self.scope = scope
        self.resource = resource
        self.refresh_ratio = refresh_ratio
        self._timeout = timeout
        self._http = http
        # Per event loop: a token source shared by an app that runs several loops (threads, FastAPI's
        # TestClient without `with`) must not use one loop's connections or lock from another.
        self._async_http = AsyncClients(async_http, timeout)
        self._alocks: PerLoop[asyncio.Lock] = PerLoop(asyncio.Lock)
        self._clock = clock
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.request_count = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: object) -> ClientCredentials:
        """Configured from OSTIARY_CLIENT_ID, OSTIARY_CLIENT_SECRET, OSTIARY_TOKEN_URL or OSTIARY_ISSUER, ..."""
        from .env import settings_from_env

        return cls(**settings_from_env(environ), **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.auth.client_id!r}, token_url={self.token_url or self.issuer!r})"

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout)
        return self._http

    @property
    def async_http(self) -> httpx.AsyncClient:
        """The running event loop's client (call from a coroutine)."""
        return self._async_http.get()

    def _form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.resource:
            form["resource"] = self.resource  # RFC 8707
        return form

    def _endpoint(self) -> str:
        if self.token_url is None:
            assert self.issuer is not None
            try:
                self.token_url = str(fetch_metadata(self.http, self.issuer)["token_endpoint"])
            except (DiscoveryError, KeyError) as exc:
                raise TokenError("discovery_failed", str(exc)) from exc
        return self.token_url

    async def _aendpoint(self) -> str:
        if self.token_url is None:
            assert self.issuer is not None
            try:
                self.token_url = str((await afetch_metadata(self.async_http, self.issuer))["token_endpoint"])
            except (DiscoveryError, KeyError) as exc:
                raise TokenError("discovery_failed", str(exc)) from exc
        return self.token_url

    def _fresh(self, seen: Token | None) -> Token | None:
        """The current token if someone else already replaced ``seen`` with a usable one."""
        current = self._token
        if current is not None and current is not seen and not current.refresh_due(self._clock(), self.refresh_ratio):
            return current
        return None

    def _keep_or_raise(self, exc: TokenError) -> Token:
        current = self._token
        if current is not None and not current.expired(self._clock()):
            log.warning("token refresh failed (%s); the current token is still valid", exc.error)
            return current
        raise exc

    # -- sync -------------------------------------------------------------------------------
    def get_token(self) -> Token:
        seen = self._token
        now = self._clock()
        if seen is not None and not seen.refresh_due(now, self.refresh_ratio):
            return seen
        if seen is not None and not seen.expired(now):
            if not self._lock.acquire(blocking=False):
                return seen  # someone is refreshing; this token is still good
        else:
            self._lock.acquire()
        try:
            done = self._fresh(seen)
            if done is not None:
                return done
            try:
                self.request_count += 1
                self._token = token_request(self.http, self._endpoint(), self._form(), self.auth)
            except TokenError as exc:
                return self._keep_or_raise(exc)
            return self._token
        finally:
            self._lock.release()

    def invalidate(self, token: Token) -> None:
        """Forget ``token`` (the resource server said 401); a newer token is kept."""
        if self._token is token:
            self._token = None

    # -- async ------------------------------------------------------------------------------
    async def aget_token(self) -> Token:
        seen = self._token
        now = self._clock()
        if seen is not None and not seen.refresh_due(now, self.refresh_ratio):
            return seen
        lock = self._alocks.get()
        if seen is not None and not seen.expired(now) and lock.locked():
            return seen
        async with lock:
            done = self._fresh(seen)
            if done is not None:
                return done
            try:
                self.request_count += 1
                self._token = await atoken_request(
                    self.async_http, await self._aendpoint(), self._form(), self.auth
                )
            except TokenError as exc:
                return self._keep_or_raise(exc)
            return self._token

    # -- adapters ---------------------------------------------------------------------------
    def httpx_auth(self) -> TokenAuth:
        """An httpx.Auth (sync and async) sending this source's token, retrying once after a 401."""
        from .httpx_auth import TokenAuth

        return TokenAuth(self)

    def requests_auth(self) -> RequestsTokenAuth:
        """A requests AuthBase doing the same (needs ``pip install ostiary[requests]``)."""
        from .requests_auth import RequestsTokenAuth

        return RequestsTokenAuth(self)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    async def aclose(self) -> None:
        await self._async_http.aclose()
