"""Header rules at the edge (issue items 4 and 6; RFC 9110 §7.6).

Towards the upstream: connection-specific fields never cross, nor any field the caller named in
``Connection``; identity and forwarding fields are the gateway's alone, so every caller-sent field
whose name, compared case-insensitively with ``_`` equal to ``-``, is ``X-Ostiary-*``, ``X-Forwarded-*``,
``Forwarded``, ``X-Real-IP`` or ``X-Request-Id`` is removed and the gateway's values are set instead.
The caller's credential and cookies stay at the edge unless the route asks for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..resource.principal import Principal
from .config import Route

__all__ = ["IDENTITY_HEADERS", "identity_fields", "request_fields", "response_fields"]

Fields = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1 and the de-facto hop-by-hop fields
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"proxy-connection"})
IDENTITY_HEADERS = ("X-Ostiary-Client-Id", "X-Ostiary-Subject", "X-Ostiary-Scope")
_GATEWAY_OWNED = (b"x-ostiary-", b"x-forwarded-")
_GATEWAY_OWNED_EXACT = frozenset({b"forwarded", b"x-real-ip", b"x-request-id", b"host"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _normal(name: bytes) -> bytes:
    return name.lower().replace(b"_", b"-")


def _connection_named(fields: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for name, value in fields:
        if name.lower() == b"connection":
            named.update(_normal(v.strip()) for v in value.split(b","))
    return named


def identity_fields(principal: Principal | None) -> list[tuple[str, str]]:
    """The identity the upstream may rely on (nothing for a public route)."""
    if principal is None:
        return []
    values = (principal.client_id, principal.subject, " ".join(sorted(principal.scopes)))
    # a field value never carries control characters (RFC 9110 §5.5), whatever a claim contains
    return [(name, _CONTROL.sub("?", value)) for name, value in zip(IDENTITY_HEADERS, values, strict=True)
            if value is not None]


def _forwarded_for(address: str) -> str:
    return f'"[{address}]"' if ":" in address else address  # RFC 7239 §6: IPv6 in brackets, quoted


def request_fields(fields: Iterable[tuple[bytes, bytes]], route: Route, principal: Principal | None, *,
                   address: str, scheme: str, request_id: str) -> Fields:
    """The fields to send upstream, built from the caller's ``fields``."""
    fields = list(fields)
    drop = _connection_named(fields)
    out: Fields = []
    host = b""
    for name, value in fields:
        key = _normal(name)
        if key == b"host":
            host = value
        if (key in HOP_BY_HOP or key in drop or key in _GATEWAY_OWNED_EXACT or key.startswith(_GATEWAY_OWNED)
                or (key == b"authorization" and not route.forward_authorization)
                or (key == b"cookie" and not route.forward_cookies)):
            continue
        out.append((name, value))
    out.append((b"x-forwarded-for", address.encode()))
    out.append((b"x-forwarded-proto", scheme.encode()))
    forwarded = f"for={_forwarded_for(address)};proto={scheme}"
    if host:
        out.append((b"x-forwarded-host", host))
        forwarded += f';host="{host.decode("latin-1")}"'
    out.append((b"forwarded", forwarded.encode("latin-1")))
    out.append((b"x-request-id", request_id.encode()))
    out.extend((name.lower().encode(), value.encode()) for name, value in identity_fields(principal))
    return out


def response_fields(fields: Iterable[tuple[bytes, bytes]]) -> Fields:
    """The upstream's answer fields without the connection-specific ones."""
    fields = list(fields)
    drop = _connection_named(fields)
    return [(n, v) for n, v in fields if _normal(n) not in HOP_BY_HOP and _normal(n) not in drop]
