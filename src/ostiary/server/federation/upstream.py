"""An upstream provider's discovery document and keys, fetched with the trusted client and cached.

The URLs are the administrator's (``[[federation]]`` issuer), so the trusted outbound class applies
(``ostiary.outbound.trusted_client``): no redirects, a timeout, and a byte cap enforced while reading.
The discovery document must name the configured issuer exactly (OIDC Discovery §4.3), else it is
refused (a mix-up defence: RFC 9700 §4.4). Keys are refetched on an unknown `kid`, at most once per
`min_refetch` seconds, so a flood of forged `kid`s cannot turn into a flood of requests upstream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from joserfc.jwk import KeySet

from ...config import FederationProvider
from ...keys import KeyError_
from ...outbound import url_refusal
from ..client_keys import key_set_from_jwks

__all__ = ["MAX_DOCUMENT_BYTES", "UpstreamError", "UpstreamMetadata", "UpstreamProvider"]

MAX_DOCUMENT_BYTES = 256 * 1024


class UpstreamError(Exception):
    """The upstream provider or its answer is unusable; ``reason`` is for the log and the audit event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UpstreamMetadata:
    """The fields of the upstream's discovery document this server uses (OIDC Discovery §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    iss_parameter: bool  # RFC 9207 §3: authorization_response_iss_parameter_supported

    @classmethod
    def parse(cls, doc: Any, issuer: str) -> UpstreamMetadata:
        if not isinstance(doc, dict):
            raise UpstreamError("the discovery document is not a JSON object")
        if doc.get("issuer") != issuer:  # OIDC Discovery §4.3: exactly the configured issuer
            raise UpstreamError("the discovery document names another issuer")
        urls: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
            value = doc.get(name)
            if value is None and name == "userinfo_endpoint":
                continue
            refusal = _endpoint_refusal(value, issuer) if isinstance(value, str) else "not a URL"
            if refusal is not None or not isinstance(value, str):
                raise UpstreamError(f"the discovery document has no usable {name}: {refusal}")
            urls[name] = value
        userinfo = urls.pop("userinfo_endpoint", None)
        methods = doc.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        return cls(issuer=issuer, userinfo_endpoint=userinfo,
                   token_auth_methods=tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list)
                   else ("client_secret_basic",),
                   iss_parameter=doc.get("authorization_response_iss_parameter_supported") is True, **urls)


def _endpoint_refusal(url: str, issuer: str) -> str | None:
    """Why this server will not use an endpoint the upstream's discovery document names, or None.

    Only the issuer is the administrator's: an endpoint on its origin is trusted like it (it may be on
    a private network); one elsewhere is the upstream's word, so it must be a URL the safe fetcher would
    request (https, no internal address literal, no loopback name, no userinfo: RFC 9700 §4.15). An
    https issuer's endpoints are never http (the client secret and tokens would travel in clear text).
    """
    if any(c <= " " or c in "\x7f\\" for c in url):
        return "control characters, spaces or backslashes"
    parts, home = urlsplit(url), urlsplit(issuer)
    if (parts.scheme, parts.netloc) == (home.scheme, home.netloc) and parts.scheme in ("https", "http"):
        return None
    return url_refusal(url)


async def fetch_json(http: httpx.AsyncClient, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                     **kwargs: Any) -> tuple[int, Any]:
    """Status and JSON body of a request upstream, the body capped while it streams."""
    try:
        async with http.stream(method, url, headers={"Accept": "application/json", **(headers or {})},
                               **kwargs) as response:
            if response.is_redirect:
                raise UpstreamError(f"{url} answered a redirect")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise UpstreamError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
            status = response.status_code
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{url}: {type(exc).__name__}") from None
    try:
        return status, orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{url} did not answer JSON") from None


class UpstreamProvider:
    """One configured upstream: its settings, and its metadata and keys, cached for `ttl` seconds."""

    def __init__(self, config: FederationProvider, http: httpx.AsyncClient, *, ttl: float = 3600.0,
                 min_refetch: float = 30.0) -> None:
        self.config = config
        self._http = http
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._metadata: tuple[float, UpstreamMetadata] | None = None
        self._keys: tuple[float, KeySet] | None = None
        self._lock = asyncio.Lock()

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def label(self) -> str:
        return self.config.label or self.config.id

    async def metadata(self) -> UpstreamMetadata:
        """The discovery document (cached); raises UpstreamError."""
        now = time.monotonic()
        if self._metadata is not None and self._metadata[0] > now:
            return self._metadata[1]
        async with self._lock:
            if self._metadata is None or self._metadata[0] <= time.monotonic():
                url = self.config.issuer + "/.well-known/openid-configuration"
                status, doc = await fetch_json(self._http, "GET", url)
                if status != 200:
                    raise UpstreamError(f"discovery answered {status}")
                self._metadata = (time.monotonic() + self._ttl, UpstreamMetadata.parse(doc, self.config.issuer))
            return self._metadata[1]

    async def keys(self, kid: str | None) -> KeySet:
        """The upstream's signing keys (cached), refetched once if `kid` is unknown; raises UpstreamError."""
        cached = self._keys
        now = time.monotonic()
        fresh_enough = cached is not None and cached[0] - self._ttl + self._min_refetch > now
        if cached is not None and cached[0] > now and (_has_kid(cached[1], kid) or fresh_enough):
            return cached[1]
        meta = await self.metadata()  # before the lock: it takes the lock itself when it fetches
        async with self._lock:
            cached = self._keys
            if cached is not None and cached[0] - self._ttl + self._min_refetch > time.monotonic():
                return cached[1]  # fetched moments ago (maybe by a racing request): do not ask again
            status, doc = await fetch_json(self._http, "GET", meta.jwks_uri)
            if status != 200 or not isinstance(doc, Mapping):
                raise UpstreamError(f"jwks_uri answered {status}")
            try:
                keys = key_set_from_jwks(doc)
            except KeyError_ as exc:
                raise UpstreamError(f"the upstream JWKS is unusable: {exc}") from None
            self._keys = (time.monotonic() + self._ttl, keys)
            return keys


def _has_kid(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(k.kid == kid for k in keys.keys)
