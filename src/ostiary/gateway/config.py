"""The gateway's configuration: a TOML file read once into frozen dataclasses, refused early and precisely.

Every error names the file, the key path (``routes[1].rate_limit.key``) and the reason; a TOML syntax
error also names the line. Nothing is defaulted silently that changes what is protected.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = ["Cors", "GatewayConfig", "GatewayConfigError", "RateLimit", "Route", "load_config", "parse_config"]

RESERVED_PREFIX = "/_ostiary"  # the gateway's own endpoints (metrics, forward-auth, health): never proxied
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "*"})
_KEYS = ("client", "subject", "address")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token


class GatewayConfigError(ValueError):
    """A configuration the gateway refuses to start with; the message says where and why."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests: int
    per_seconds: float
    key: Literal["client", "subject", "address"] = "client"


@dataclass(frozen=True, slots=True)
class Cors:
    origins: frozenset[str]
    headers: tuple[str, ...] = ("authorization", "content-type")
    max_age: int = 600


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # normalized prefix without a trailing slash ("" for the root)
    upstream: str
    audience: str | None
    scopes: Mapping[str, tuple[str, ...]]  # METHOD (or "*") -> scopes all required
    public: bool = False
    rate_limit: RateLimit | None = None
    clients: frozenset[str] | None = None  # None: any client
    strip_prefix: bool = False
    forward_authorization: bool = False
    forward_cookies: bool = False
    timeout: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    cors: Cors | None = None
    self_service: bool = False
    description: str = ""
    name: str = ""
    internal_jwt: bool = False
    websocket: bool = False

    def allowed_methods(self) -> list[str]:
        if "*" in self.scopes:
            return ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]
        names = set(self.scopes)
        if "GET" in names:
            names.add("HEAD")  # HEAD follows GET
        return sorted(names)

    def scopes_for(self, method: str) -> tuple[str, ...] | None:
        """The scopes a method needs; None if the method is not allowed here (never OPTIONS: only a preflight)."""
        if method == "OPTIONS":
            return None
        found = self.scopes.get(method)
        if found is None and method == "HEAD":
            found = self.scopes.get("GET")
        if found is None:
            found = self.scopes.get("*")
        return found


@dataclass(frozen=True, slots=True)
class IntrospectionCredentials:
    client_id: str
    client_secret: str
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class InternalJwt:
    issuer: str
    key_file: str
    lifetime: int = 30  # seconds, at most 60


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    issuer: str
    routes: tuple[Route, ...]
    source: str = "<config>"
    introspection: IntrospectionCredentials | None = None
    rate_limit_backend: str = "memory"  # "memory" or a redis:// URL
    rate_limit_prefix: str = "ostiary:gateway:"
    forward_auth: bool = True
    trusted_proxies: frozenset[str] = field(default_factory=lambda: frozenset({"127.0.0.1", "::1"}))
    metrics: bool = True
    internal_jwt: InternalJwt | None = None


class _Reader:
    """Typed access to one table of the file, errors naming the key path."""

    def __init__(self, source: str, data: Mapping[str, Any], path: str) -> None:
        self.source, self.data, self.path = source, data, path

    def fail(self, key: str, reason: str) -> GatewayConfigError:
        where = f"{self.path}.{key}" if self.path and key else (self.path or key)
        return GatewayConfigError(f"{self.source}: {where}: {reason}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.fail(key, "must be a number")
        if not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be of type {name.replace('str', 'string').replace('dict', 'table')}")
        return value

    def unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, "unknown setting")

    def child(self, key: str, allowed: set[str]) -> _Reader | None:
        """The table under ``key`` (None if absent), refusing keys not in ``allowed``."""
        value = self.get(key, dict)
        if value is None:
            return None
        table = _Reader(self.source, value, f"{self.path}.{key}" if self.path else key)
        table.unknown(allowed)
        return table


def _url(reader: _Reader, key: str, *, required: bool = True, schemes: tuple[str, ...] = ("http", "https")) -> Any:
    value = reader.get(key, str, required=required)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname or parts.query or parts.fragment:
        raise reader.fail(key, f"must be an absolute {' or '.join(schemes)} URL without query or fragment")
    return value.rstrip("/") if key != "issuer" else value


def _prefix(reader: _Reader) -> str:
    from .paths import PathRefused, check_path

    value = reader.get("path", str, required=True)
    if not value.startswith("/"):
        raise reader.fail("path", "must start with /")
    try:
        normal = check_path(value.encode()).path
    except PathRefused as exc:
        raise reader.fail("path", str(exc)) from None
    normal = normal.rstrip("/")
    if normal == RESERVED_PREFIX or normal.startswith(RESERVED_PREFIX + "/"):
        raise reader.fail("path", f"{RESERVED_PREFIX} is reserved for the gateway's own endpoints")
    return normal


def _scopes(reader: _Reader, public: bool) -> dict[str, tuple[str, ...]]:
    table = reader.get("scopes", dict, required=not public)
    if table is None:
        return {"GET": ()}
    if not table:
        raise reader.fail("scopes", "must name at least one method")
    result: dict[str, tuple[str, ...]] = {}
    for method, value in table.items():
        if method not in _METHODS:
            raise reader.fail(f"scopes.{method}", "unknown method (use GET, HEAD, POST, PUT, PATCH, DELETE or *)")
        values = value.split() if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) and _SCOPE_TOKEN.fullmatch(v) for v in values):
            raise reader.fail(f"scopes.{method}", "must be a scope string or a list of scope strings")
        result[method] = tuple(values)
    return result


def _rate_limit(reader: _Reader) -> RateLimit | None:
    limit = reader.child("rate_limit", {"requests", "per_seconds", "key"})
    if limit is None:
        return None
    requests = limit.get("requests", int, required=True)
    per_seconds = limit.get("per_seconds", (int, float), required=True)
    key = limit.get("key", str, "client")
    if requests < 1:
        raise limit.fail("requests", "must be at least 1")
    if per_seconds <= 0:
        raise limit.fail("per_seconds", "must be positive")
    if key not in _KEYS:
        raise limit.fail("key", f"must be one of {', '.join(_KEYS)}")
    return RateLimit(requests, float(per_seconds), key)


def _cors(reader: _Reader) -> Cors | None:
    cors = reader.child("cors", {"origins", "headers", "max_age"})
    if cors is None:
        return None
    origins = cors.get("origins", list, required=True)
    for origin in origins:
        parts = urlsplit(origin) if isinstance(origin, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise cors.fail("origins", f"{origin!r} is not an origin (scheme://host[:port])")
    headers = cors.get("headers", list, ["authorization", "content-type"])
    return Cors(frozenset(origins), tuple(str(h).lower() for h in headers), cors.get("max_age", int, 600))


_ROUTE_KEYS = {"path", "upstream", "audience", "scopes", "public", "rate_limit", "clients", "strip_prefix",
               "forward_authorization", "forward_cookies", "timeout", "max_body_bytes", "cors", "self_service",
               "description", "name", "internal_jwt", "websocket"}


def _route(reader: _Reader) -> Route:
    reader.unknown(_ROUTE_KEYS)
    path = _prefix(reader)
    public = reader.get("public", bool, False)
    audience = reader.get("audience", str, required=not public)
    clients = reader.get("clients", list)
    if clients is not None and not all(isinstance(c, str) for c in clients):
        raise reader.fail("clients", "must be a list of client ids")
    timeout = reader.get("timeout", (int, float), 30.0)
    max_body = reader.get("max_body_bytes", int, 10 * 1024 * 1024)
    if timeout <= 0:
        raise reader.fail("timeout", "must be positive")
    if max_body < 0:
        raise reader.fail("max_body_bytes", "must not be negative")
    return Route(
        path=path, upstream=_url(reader, "upstream"), audience=audience, scopes=_scopes(reader, public),
        public=public, rate_limit=_rate_limit(reader), clients=frozenset(clients) if clients is not None else None,
        strip_prefix=reader.get("strip_prefix", bool, False),
        forward_authorization=reader.get("forward_authorization", bool, False),
        forward_cookies=reader.get("forward_cookies", bool, False), timeout=float(timeout),
        max_body_bytes=max_body, cors=_cors(reader), self_service=reader.get("self_service", bool, False),
        description=reader.get("description", str, ""), name=reader.get("name", str, path or "/"),
        internal_jwt=reader.get("internal_jwt", bool, False), websocket=reader.get("websocket", bool, False),
    )


def _internal_jwt(top: _Reader, issuer: str, base: Path) -> InternalJwt | None:
    table = top.child("internal_jwt", {"issuer", "key_file", "lifetime"})
    if table is None:
        return None
    own = table.get("issuer", str, required=True)
    if own == issuer:  # its tokens must never pass for the authorization server's
        raise table.fail("issuer", "must differ from the authorization server's issuer")
    lifetime = table.get("lifetime", int, 30)
    if not 1 <= lifetime <= 60:
        raise table.fail("lifetime", "must be between 1 and 60 seconds")
    return InternalJwt(own, str(base / table.get("key_file", str, required=True)), lifetime)


def parse_config(data: Mapping[str, Any], source: str = "<config>", base: Path | None = None) -> GatewayConfig:
    """Validate a parsed TOML document (relative file names are under ``base``); raises GatewayConfigError."""
    top = _Reader(source, data, "")
    top.unknown({"issuer", "routes", "introspection", "rate_limit_backend", "rate_limit_prefix", "forward_auth",
                 "trusted_proxies", "metrics", "internal_jwt"})
    issuer = _url(top, "issuer")
    raw_routes = top.get("routes", list, required=True)
    if not raw_routes:
        raise top.fail("routes", "must list at least one route")
    routes: list[Route] = []
    for i, raw in enumerate(raw_routes):
        if not isinstance(raw, dict):
            raise top.fail(f"routes[{i}]", "must be a table")
        route = _route(_Reader(source, raw, f"routes[{i}]"))
        if any(r.path == route.path for r in routes):
            raise top.fail(f"routes[{i}].path", f"{route.path or '/'} is already routed")
        routes.append(route)
    introspection = None
    intro = top.child("introspection", {"client_id", "client_secret", "client_secret_file", "endpoint"})
    if intro is not None:
        secret = intro.get("client_secret", str)
        secret_file = intro.get("client_secret_file", str)
        if (secret is None) == (secret_file is None):
            raise intro.fail("client_secret", "give exactly one of client_secret and client_secret_file")
        if secret_file is not None:
            try:
                secret = (base or Path.cwd()).joinpath(secret_file).read_text().strip()
            except OSError as exc:
                raise intro.fail("client_secret_file", f"cannot be read ({exc.strerror})") from None
        introspection = IntrospectionCredentials(intro.get("client_id", str, required=True), secret,
                                                 _url(intro, "endpoint", required=False))
    backend = top.get("rate_limit_backend", str, "memory")
    if backend != "memory" and urlsplit(backend).scheme not in ("redis", "rediss", "unix"):
        raise top.fail("rate_limit_backend", 'must be "memory" or a redis:// URL')
    proxies = top.get("trusted_proxies", list, ["127.0.0.1", "::1"])
    internal = _internal_jwt(top, issuer, base or Path.cwd())
    for i, route in enumerate(routes):
        if route.internal_jwt and internal is None:
            raise top.fail(f"routes[{i}].internal_jwt", "needs an [internal_jwt] table (issuer, key_file)")
    return GatewayConfig(
        issuer=issuer, routes=tuple(routes), source=source, introspection=introspection,
        rate_limit_backend=backend, rate_limit_prefix=top.get("rate_limit_prefix", str, "ostiary:gateway:"),
        forward_auth=top.get("forward_auth", bool, True), trusted_proxies=frozenset(map(str, proxies)),
        metrics=top.get("metrics", bool, True), internal_jwt=internal,
    )


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate the file; raises GatewayConfigError naming the file, the key (or line) and why."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(f"{source}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise GatewayConfigError(f"{source}: is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"line {match.group(1)}, column {match.group(2)}" if match else "syntax"
        raise GatewayConfigError(f"{source}: {where}: TOML syntax error: {reason}") from None
    return parse_config(data, source, Path(path).resolve().parent)
