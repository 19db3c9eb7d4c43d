"""Outbound HTTP: one safe fetcher for client-supplied URLs, and the trusted class for configured ones.

A client-supplied URL (``jwks_uri``, ``jku``, back- and front-channel logout URIs,
``sector_identifier_uri``) points wherever an attacker likes, so :class:`SafeFetcher` is the only way
the server requests one (SSRF, RFC 9700 §4.15 and OWASP ASVS V12.6):

* https only; http only to loopback, and loopback at all only with the development setting;
* the name is resolved once and every address checked against :data:`REFUSED_NETWORKS` before any
  connection; the request then goes to the checked address with ``Host`` and TLS SNI (and so
  certificate verification) set to the name, so no second resolution can rebind it;
* proxy environment variables are ignored, redirects are refused, one deadline covers resolution,
  connection and body, and the body is capped while it streams;
* a failed URL is not tried again for a short while (negative cache), and the caller learns only
  that the fetch failed (:class:`FetchError`'s text is generic; the reason goes to the log).

URLs an administrator configures (upstream identity providers, a gateway's upstream or issuer) are
trusted: :func:`trusted_client` is a plain client that honours proxies and private addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from .server.audit import audit

__all__ = ["REFUSED_NETWORKS", "FetchError", "FetchResponse", "Resolver", "SafeFetcher", "address_refusal",
           "system_resolver", "trusted_client", "url_refusal"]

log = logging.getLogger("ostiary.outbound")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> addresses``: injectable for tests; the default asks the system resolver."""

REFUSED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "fc00::/7",
    "fe80::/10", "ff00::/8",
))
"""Never fetched from: loopback, private, CGNAT, link-local, ULA, multicast, and the IPv6 forms that
embed an IPv4 address (mapped, NAT64, 6to4), which would reach the IPv4 ranges by another name."""

MAX_BYTES = 256 * 1024
_MAX_NEGATIVE = 4096


class FetchError(Exception):
    """The URL could not be fetched. ``str()`` is deliberately generic (it may reach the client, and
    must not tell an attacker what listens where); ``reason`` is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__("the URL could not be fetched")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FetchResponse:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises FetchError if it is not JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise FetchError("the answer is not JSON") from None


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a request may not go to ``address``, or None if it may."""
    if allow_loopback and address.is_loopback:
        return None
    for network in REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return f"{address} is in {network}"
    if not address.is_global:  # documentation, benchmarking, reserved ranges...
        return f"{address} is not a global address"
    return None


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) name or IP literal, without brackets
    port: int
    host_header: str


def _target(raw: str, allow_loopback: bool) -> _Target:
    if any(c <= " " or c in "\x7f\\" for c in raw):  # parsers disagree on these (WHATWG vs RFC 3986)
        raise FetchError("control characters, spaces or backslashes in the URL")
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise FetchError(f"malformed URL: {exc}") from None
    if url.scheme not in ("https", "http") or not url.raw_host:
        raise FetchError("not an absolute http(s) URL")
    if url.scheme == "http" and not allow_loopback:
        raise FetchError("http is refused: https only")
    if url.userinfo:
        raise FetchError("userinfo in the URL")
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    return _Target(url.copy_with(fragment=None), host, port, shown if url.port is None else f"{shown}:{port}")


def url_refusal(raw: str, *, allow_loopback: bool = False) -> str | None:
    """Why the fetcher will never request ``raw``, judged without DNS (at registration), or None.

    The same rules as a fetch: https only, http only to a loopback name or literal under the
    development setting, no userinfo or controls, and an IP literal must be an allowed address.
    """
    try:
        target = _target(raw, allow_loopback)
    except FetchError as exc:
        return exc.reason
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        refusal = address_refusal(literal, allow_loopback=allow_loopback)
        if refusal is not None:
            return refusal
    name = target.host.lower().rstrip(".")
    # RFC 6761 §6.3: localhost and every name under it are loopback (resolvers and browsers agree)
    loopback = literal.is_loopback if literal is not None else name == "localhost" or name.endswith(".localhost")
    if loopback and not allow_loopback:
        return "loopback is refused outside the development setting"
    if target.url.scheme == "http" and not loopback:
        return "http only to loopback (development setting); https otherwise"
    return None



class SafeFetcher:
    """The one way to request a client-supplied URL (see the module docstring for the rules)."""

    def __init__(self, *, allow_loopback: bool = False, negative_ttl: float = 30.0, timeout: float = 5.0,
                 max_bytes: int = MAX_BYTES, resolver: Resolver | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.allow_loopback = allow_loopback
        self._negative_ttl = negative_ttl
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._resolve = resolver or system_resolver
        self._failed: dict[str, float] = {}
        # trust_env=False: proxy variables must not reroute a checked request; no keep-alive, so a
        # connection verified for one name is never reused for another name on the same address.
        self._http = httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(retries=0),
            trust_env=False, follow_redirects=False, timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(self, url: str, *, accept: str = "application/json", deadline: float | None = None,
                  max_bytes: int | None = None) -> FetchResponse:
        """GET a client-supplied URL; raises FetchError unless it answers 2xx within the limits."""
        return await self._fetch("GET", url, {"Accept": accept}, None, deadline, max_bytes)

    async def post_form(self, url: str, form: Mapping[str, str], *, deadline: float | None = None,
                        max_bytes: int | None = None) -> FetchResponse:
        """POST form data to a client-supplied URL; raises FetchError unless it answers 2xx."""
        content = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self._fetch("POST", url, headers, content, deadline, max_bytes)

    async def _fetch(self, method: str, url: str, headers: dict[str, str], content: bytes | None,
                     deadline: float | None, max_bytes: int | None) -> FetchResponse:
        now = time.monotonic()
        if self._failed.get(url, 0.0) > now:
            raise FetchError("failed recently (negative cache)")
        try:
            async with asyncio.timeout(deadline or self._timeout):  # one deadline for everything
                return await self._attempt(method, url, headers, content, max_bytes or self._max_bytes)
        except FetchError as exc:
            self._remember(url, now)
            log.warning("outbound %s %s failed: %s", method, _redacted(url), exc.reason)
            raise
        except (TimeoutError, httpx.HTTPError, OSError, UnicodeError) as exc:
            self._remember(url, now)
            reason = "deadline exceeded" if isinstance(exc, TimeoutError) else type(exc).__name__
            log.warning("outbound %s %s failed: %s", method, _redacted(url), reason)
            raise FetchError(reason) from None

    def _remember(self, url: str, now: float) -> None:
        if len(self._failed) >= _MAX_NEGATIVE:
            self._failed = {u: t for u, t in self._failed.items() if t > now}
            if len(self._failed) >= _MAX_NEGATIVE:
                self._failed.clear()
        self._failed[url] = now + self._negative_ttl

    async def _address(self, target: _Target, scheme: str) -> IPAddress:
        """The checked address to connect to: every address the name resolves to must pass."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(target.host)
        except ValueError:
            literal = None
        try:
            found = [literal] if literal else [ipaddress.ip_address(a) for a in
                                              await self._resolve(target.host, target.port)]
        except (OSError, ValueError) as exc:
            raise FetchError(f"cannot resolve {target.host}: {type(exc).__name__}") from None
        if not found:
            raise FetchError(f"{target.host} has no address")
        for address in found:
            refusal = address_refusal(address, allow_loopback=self.allow_loopback)
            if refusal is None and scheme == "http" and not address.is_loopback:
                refusal = f"http to {address}: http only to loopback"
            if refusal is not None:
                audit("outbound_refused", host=target.host, reason=refusal)
                raise FetchError(refusal)
        return found[0]

    async def _attempt(self, method: str, raw_url: str, headers: dict[str, str], content: bytes | None,
                       max_bytes: int) -> FetchResponse:
        target = _target(raw_url, self.allow_loopback)
        address = await self._address(target, target.url.scheme)
        url = target.url.copy_with(host=str(address))
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        request = self._http.build_request(method, url, headers={**headers, "Host": target.host_header},
                                           content=content, extensions=extensions)
        response = await self._http.send(request, stream=True)
        try:
            if response.is_redirect or 300 <= response.status_code < 400:
                audit("outbound_refused", host=target.host, reason="redirect")
                raise FetchError(f"answered {response.status_code}: redirects are refused")
            if not response.is_success:
                raise FetchError(f"answered {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"body of {declared} bytes is over the {max_bytes}-byte cap")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"body over the {max_bytes}-byte cap")
            return FetchResponse(response.status_code, response.headers.get("content-type", ""), bytes(body))
        finally:
            await response.aclose()


def _redacted(url: str) -> str:
    """The URL without its query (it could carry something secret) for the log."""
    return url.split("?", 1)[0].split("#", 1)[0][:200]


def trusted_client(*, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A client for URLs an administrator configured (upstream identity providers, a gateway's upstream):
    private addresses and proxy variables allowed, still no redirects followed and a timeout."""
    return httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)
