"""The gateway as an ASGI app: its own endpoints under ``/_ostiary/``, everything else checked, then proxied.

Routes are reloaded on ``SIGHUP`` (issue item 6): a new configuration is read and validated, then
swapped in at once; requests in flight finish with the routes they started with, connections stay
open. A configuration that fails validation is logged and the running one kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time
from dataclasses import dataclass

import orjson

from .asgi import Receive, Scope, Send, send_bytes, send_json
from .config import GatewayConfig, GatewayConfigError, load_config
from .cors import actual_fields, preflight_fields
from .decision import Decision, EdgeCheck
from .forward_auth import FORWARD_AUTH_PATHS, answer_forward_auth
from .internal_jwt import InternalTokens
from .metrics import Metrics
from .proxy import Forwarder, Outcome
from .ratelimit import RateLimiter, make_limiter
from .upstream import UpstreamPool
from .verifiers import Verifiers
from .websocket import deny_websocket, relay_websocket

__all__ = ["Gateway"]

log = logging.getLogger("ostiary.gateway")
access_log = logging.getLogger("ostiary.gateway.access")
METRICS_PATH = b"/_ostiary/metrics"
HEALTH_PATH = b"/_ostiary/health"
JWKS_PATH = b"/_ostiary/jwks.json"


@dataclass(frozen=True, slots=True)
class _State:
    config: GatewayConfig
    edge: EdgeCheck
    verifiers: Verifiers
    limiter: RateLimiter
    internal: InternalTokens | None


class Gateway:
    """``Gateway(config)`` is an ASGI app; ``config_path`` lets ``SIGHUP`` reread the file."""

    def __init__(self, config: GatewayConfig, *, config_path: str | None = None) -> None:
        self.config_path = config_path
        self.pool = UpstreamPool()
        self.forwarder = Forwarder(self.pool)
        self.metrics = Metrics()
        self.state = self._build(config, None)

    def _build(self, config: GatewayConfig, old: _State | None) -> _State:
        same_backend = old is not None and (old.config.rate_limit_backend, old.config.rate_limit_prefix) == (
            config.rate_limit_backend, config.rate_limit_prefix)
        limiter = old.limiter if old is not None and same_backend else make_limiter(
            config.rate_limit_backend, config.rate_limit_prefix)
        internal = InternalTokens(config.internal_jwt, config.source) if config.internal_jwt else None
        verifiers = Verifiers(config)
        return _State(config, EdgeCheck(config.routes, verifiers, limiter), verifiers, limiter, internal)

    async def reload(self) -> bool:
        """Reread the configuration file; True if the new routes are in force."""
        if self.config_path is None:
            return False
        try:
            config = load_config(self.config_path)
            new = self._build(config, self.state)
        except GatewayConfigError as exc:
            log.error("reload refused, keeping the running routes: %s", exc)
            return False
        old, self.state = self.state, new
        if old.limiter is not self.state.limiter:
            await old.limiter.aclose()
        await old.verifiers.aclose()
        log.info("routes reloaded from %s (%d routes)", self.config_path, len(config.routes))
        return True

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                    asyncio.get_running_loop().add_signal_handler(
                        signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        await self.pool.aclose()
        await self.state.limiter.aclose()
        await self.state.verifiers.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = self.state
        request_id = secrets.token_hex(8)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        method: str = scope["method"]
        address = scope["client"][0] if scope.get("client") else "unknown"
        if raw_path.startswith(b"/_ostiary/"):
            await self._own(state, scope, send, raw_path, request_id)
            return
        decision, outcome = await self._handle(state, scope, receive, send, method, raw_path, address, request_id)
        self._record(decision, method, raw_path, address, request_id, outcome, started)

    def _record(self, decision: Decision, method: str, raw_path: bytes, address: str, request_id: str,
                outcome: Outcome, started: float) -> None:
        route = decision.route.name if decision.route else "(none)"
        elapsed = time.perf_counter() - started
        self.metrics.observe(route, outcome.status, elapsed)
        if outcome.upstream_error:
            self.metrics.upstream_error(route, outcome.upstream_error)
        if access_log.isEnabledFor(logging.INFO):
            principal = decision.principal
            access_log.info(orjson.dumps({
                "request_id": request_id, "method": method, "path": raw_path.decode("latin-1"), "route": route,
                "client_id": principal.client_id if principal else None, "status": outcome.status,
                "duration_ms": round(elapsed * 1000, 2), "address": address,
            }).decode())

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state, request_id = self.state, secrets.token_hex(8)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        address = scope["client"][0] if scope.get("client") else "unknown"
        fields: list[tuple[bytes, bytes]] = scope["headers"]
        authorization = [v.decode("latin-1") for k, v in fields if k.lower() == b"authorization"]
        decision = await state.edge.decide("GET", raw_path, authorization, address)
        if decision.allowed and decision.route is not None and not decision.route.websocket:
            decision.status, decision.error = 400, "invalid_request"
            decision.description = "this route does not pass WebSockets"
        if decision.allowed:
            status = await relay_websocket(scope, receive, send, decision, request_id, address)
        else:
            status = decision.status
            await deny_websocket(scope, send, status, {"error": decision.error, "error_description":
                                 decision.description, "request_id": request_id},
                                 {**decision.headers, "x-request-id": request_id})
        self._record(decision, "GET", raw_path, address, request_id, Outcome(status), started)

    async def _handle(self, state: _State, scope: Scope, receive: Receive, send: Send, method: str,
                      raw_path: bytes, address: str, request_id: str) -> tuple[Decision, Outcome]:
        fields: list[tuple[bytes, bytes]] = scope["headers"]
        if method == "OPTIONS":
            decision = await state.edge.decide("OPTIONS", raw_path, [], address, count=False)
            if decision.route is not None and decision.status in (200, 405):
                methods = decision.route.allowed_methods()
                preflight = preflight_fields(decision.route.cors, fields, methods)
                if preflight is not None:
                    await send_bytes(send, 204, b"", [(k.encode(), v.encode()) for k, v in preflight.items()])
                    return decision, Outcome(204)
                decision.status, decision.error = 405, "method_not_allowed"
                decision.description = "OPTIONS is answered only as a CORS preflight"
                decision.headers["allow"] = ", ".join(methods)
        else:
            authorization = [v.decode("latin-1") for k, v in fields if k.lower() == b"authorization"]
            decision = await state.edge.decide(method, raw_path, authorization, address)
        cors = actual_fields(decision.route.cors if decision.route else None, fields)
        if not decision.allowed:
            await send_json(send, decision.status, {
                "error": decision.error, "error_description": decision.description, "request_id": request_id,
            }, {**decision.headers, **cors, "x-request-id": request_id}, head=method == "HEAD")
            return decision, Outcome(decision.status)
        extra = [(k.encode("latin-1"), v.encode("latin-1"))
                 for k, v in {**decision.headers, **cors, "x-request-id": request_id}.items()]
        internal = None
        if state.internal is not None and decision.route is not None and decision.route.internal_jwt \
                and decision.principal is not None:
            internal = state.internal.mint(decision.principal, decision.route.upstream)
        return decision, await self.forwarder.forward(scope, receive, send, decision, extra, request_id, address,
                                                      internal)

    async def _own(self, state: _State, scope: Scope, send: Send, raw_path: bytes, request_id: str) -> None:
        if raw_path == METRICS_PATH and state.config.metrics and scope["method"] in ("GET", "HEAD"):
            await send_bytes(send, 200, self.metrics.render().encode(), [], b"text/plain; version=0.0.4")
        elif raw_path == JWKS_PATH and state.internal is not None:
            await send_bytes(send, 200, state.internal.jwks, [], b"application/jwk-set+json")
        elif raw_path == HEALTH_PATH:
            await send_json(send, 200, {"status": "ok", "routes": len(state.config.routes)})
        elif raw_path in FORWARD_AUTH_PATHS and state.config.forward_auth:
            decision = await answer_forward_auth(state.edge, state.config.trusted_proxies, scope, send, request_id)
            route = decision.route.name if decision.route else "(none)"
            self.metrics.observe(f"forward-auth:{route}", decision.status, 0.0)
        else:
            await send_json(send, 404, {"error": "not_found", "error_description": "no such gateway endpoint",
                                        "request_id": request_id})
