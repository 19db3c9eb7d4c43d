"""The client's address behind trusted reverse proxies (X-Forwarded-For, RFC 7239 Forwarded).

Only a peer inside `trusted_proxies` may say who the client is; the forwarded list is read from
the right (the nearest proxy) and the first address that is not itself a trusted proxy is the
client. From anyone else the headers are ignored, so a client cannot pick its own address and
escape the throttles (docs/configuration.md). Only the header the proxies set (`forwarded_header`)
is read: a proxy that appends to X-Forwarded-For passes a client's own `Forwarded` through as sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["TrustedProxies", "TrustedProxyMiddleware"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> str | None:
    """The IP address in a forwarded element (`1.2.3.4`, `1.2.3.4:80`, `"[::1]:80"`), or None."""
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None  # "unknown", an obfuscated identifier (RFC 7239 §6.3) or garbage


def _forwarded_for(header: str) -> list[str | None]:
    """RFC 7239 §4: the `for=` of each element, left (client) to right (nearest proxy)."""
    hops: list[str | None] = []
    for element in header.split(","):
        value = None
        for pair in element.split(";"):
            name, _, raw = pair.partition("=")
            if name.strip().lower() == "for":
                value = _address(raw)
        hops.append(value)
    return hops


class TrustedProxies:
    def __init__(self, networks: Sequence[str], header: str = "x-forwarded-for") -> None:
        self._networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._header = header.lower().encode("latin-1")

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client_address(self, peer: str, headers: Sequence[tuple[bytes, bytes]]) -> str:
        """The client's address for a request that reached us from `peer`."""
        if not self.trusts(peer):
            return peer
        values = [v.decode("latin-1") for k, v in headers if k == self._header]
        if not values:
            hops: list[str | None] = []
        elif self._header == b"forwarded":
            hops = _forwarded_for(",".join(values))
        else:
            hops = [_address(h) for h in ",".join(values).split(",")]
        client = peer
        for hop in reversed(hops):
            if hop is None:
                break  # what lies beyond a malformed entry cannot be trusted
            client = hop
            if not self.trusts(hop):
                break
        return client


class TrustedProxyMiddleware:
    """Sets the ASGI `client` to the address the trusted proxies name (every route sees it)."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            host = scope["client"][0]
            address = self.proxies.client_address(host, scope["headers"])
            if address != host:
                scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)
