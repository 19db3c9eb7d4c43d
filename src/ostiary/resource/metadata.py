"""Issuer metadata and the HTTP clients the guard uses, each with a timeout."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

from ..client._per_loop import AsyncClients, PerLoop
from ..client.discovery import DiscoveryError, afetch_metadata, fetch_metadata
from .errors import IssuerUnavailable

__all__ = ["DEFAULT_TIMEOUT", "IssuerMetadata"]

DEFAULT_TIMEOUT = 3.0  # seconds, for connect, read, write and pool: a hanging issuer never hangs a request


class IssuerMetadata:
    """The issuer's discovery document, fetched once; also owns the sync and async HTTP clients.

    The async client and lock are per event loop (client._per_loop): the guard works from any loop
    and from threads, e.g. under FastAPI's ``TestClient`` without ``with`` (a new loop per request).
    An ``async_http`` given by the caller is used as is: it must live on the caller's loop.
    """

    def __init__(
        self,
        issuer: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
        async_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer
        self.timeout = timeout
        self._http = http
        self._async_http = AsyncClients(async_http, timeout, follow_redirects=False)
        self._doc: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._alocks: PerLoop[asyncio.Lock] = PerLoop(asyncio.Lock)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._http

    @property
    def async_http(self) -> httpx.AsyncClient:
        """The running event loop's client (call from a coroutine)."""
        return self._async_http.get()

    @property
    def async_lock(self) -> asyncio.Lock:
        """The running event loop's lock (call from a coroutine)."""
        return self._alocks.get()

    def get(self) -> dict[str, Any]:
        """The metadata; raises IssuerUnavailable if it cannot be fetched."""
        if self._doc is None:
            with self._lock:
                if self._doc is None:
                    try:
                        self._doc = fetch_metadata(self.http, self.issuer)
                    except DiscoveryError as exc:
                        raise IssuerUnavailable(f"discovery failed: {exc}") from exc
        return self._doc

    async def aget(self) -> dict[str, Any]:
        if self._doc is None:
            async with self.async_lock:
                if self._doc is None:
                    try:
                        self._doc = await afetch_metadata(self.async_http, self.issuer)
                    except DiscoveryError as exc:
                        raise IssuerUnavailable(f"discovery failed: {exc}") from exc
        return self._doc

    def endpoint(self, doc: dict[str, Any], name: str) -> str:
        url = doc.get(name)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise IssuerUnavailable(f"the issuer's metadata has no {name}")
        return url

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    async def aclose(self) -> None:
        await self._async_http.aclose()
