"""The edge check (issue items 2, 3, 5): one decision per request, shared by the proxy, forward-auth and ``check``.

The checks run in a fixed order, each one able to stop the request: path rules, route, method, token
(with the verifier of ``ostiary.resource``), client allow-list, scopes, rate limit. A refusal carries
its RFC 6750 status and challenge and is audited; an allowance carries the identity for the upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..resource.bearer import challenge, extract_token
from ..resource.errors import GuardError, InsufficientScope
from ..resource.principal import Principal
from ..server.audit import audit
from .config import Route
from .paths import CheckedPath, PathRefused, check_path, match_route
from .ratelimit import RateLimiter, Verdict
from .verifiers import Verifiers

__all__ = ["Decision", "EdgeCheck"]

REALM = "ostiary-gateway"


@dataclass(slots=True)
class Decision:
    """What to do with a request: ``status`` 200 means pass it on (with ``principal`` unless the route is public)."""

    status: int
    error: str = ""
    description: str = ""
    route: Route | None = None
    path: CheckedPath | None = None
    principal: Principal | None = None
    headers: dict[str, str] = field(default_factory=dict)  # for the caller's answer (challenge, rate limit, Allow)
    reasons: list[str] = field(default_factory=list)  # why, in order: for `gateway check` and the logs

    @property
    def allowed(self) -> bool:
        return self.status == 200


class EdgeCheck:
    """Decides requests for a set of routes; ``decide`` never raises for bad input."""

    def __init__(self, routes: Sequence[Route], verifiers: Verifiers, limiter: RateLimiter | None) -> None:
        self.routes, self.verifiers, self.limiter = tuple(routes), verifiers, limiter

    def _refuse(self, decision: Decision, status: int, error: str, description: str,
                client_id: str | None = None) -> Decision:
        decision.status, decision.error, decision.description = status, error, description
        decision.reasons.append(f"refused {status} {error}: {description}")
        audit("gateway.refused", status=status, error=error, reason=description,
              route=decision.route.name if decision.route else None, client_id=client_id)
        return decision

    def _guard_error(self, decision: Decision, exc: GuardError) -> Decision:
        if exc.status_code in (401, 403):
            decision.headers["www-authenticate"] = challenge(REALM, exc)
        client = decision.principal.client_id if decision.principal else None
        return self._refuse(decision, exc.status_code, exc.error or "invalid_token",
                            exc.description or "a bearer token is required", client_id=client)

    async def decide(self, method: str, raw_path: bytes, authorization: Sequence[str], address: str,
                     *, count: bool = True) -> Decision:
        decision = Decision(200)
        try:
            decision.path = check_path(raw_path)
        except PathRefused as exc:
            return self._refuse(decision, 400, "invalid_request", str(exc))
        route = match_route(self.routes, decision.path)
        if route is None:
            return self._refuse(decision, 404, "not_found", "no route matches this path")
        decision.route = route
        decision.reasons.append(f"route {route.name} (prefix {route.path or '/'}) -> {route.upstream}")
        needed = route.scopes_for(method)
        if needed is None:
            decision.headers["allow"] = ", ".join(route.allowed_methods())
            return self._refuse(decision, 405, "method_not_allowed", f"{method} is not allowed on this route")
        if route.public:
            decision.reasons.append("public route: no token needed")
        else:
            refused = await self._token(decision, route, needed, authorization)
            if refused is not None:
                return refused
        if route.rate_limit is not None and self.limiter is not None and count:
            verdict = await self._limit(decision, route, address)
            if not verdict.allowed:
                return self._refuse(decision, 429, "rate_limited", "rate limit exceeded",
                                    client_id=decision.principal.client_id if decision.principal else None)
        decision.reasons.append("allowed")
        return decision

    async def _token(self, decision: Decision, route: Route, needed: tuple[str, ...],
                     authorization: Sequence[str]) -> Decision | None:
        try:
            token = extract_token(authorization)  # RFC 6750 §2.1; never from the query (RFC 9700 §2.4)
            principal = await self.verifiers.for_audience(route.audience or "").averify(token)
        except GuardError as exc:
            return self._guard_error(decision, exc)
        decision.principal = principal
        decision.reasons.append(f"token of client {principal.client_id} for subject {principal.subject}, "
                                f"scopes {' '.join(sorted(principal.scopes)) or '(none)'}")
        if route.clients is not None and principal.client_id not in route.clients:
            return self._refuse(decision, 403, "access_denied", "this client may not use this API",
                                client_id=principal.client_id)
        missing = tuple(s for s in needed if s not in principal.scopes)
        if missing:  # RFC 6750 §3.1: insufficient_scope names the scope needed
            return self._guard_error(decision, InsufficientScope(f"needs scope {' '.join(needed)}", needed))
        decision.reasons.append(f"scopes needed: {' '.join(needed) or '(none)'}: present")
        return None

    async def _limit(self, decision: Decision, route: Route, address: str) -> Verdict:
        assert route.rate_limit is not None and self.limiter is not None
        limit = route.rate_limit
        principal = decision.principal
        key = f"address:{address}"
        if principal is not None and limit.key == "client" and principal.client_id:
            key = f"client:{principal.client_id}"
        elif principal is not None and limit.key == "subject" and principal.subject:
            key = f"subject:{principal.subject}"
        verdict = await self.limiter.hit(f"{route.path}|{key}", limit)
        decision.headers.update(verdict.fields(route.name, limit.per_seconds))
        decision.reasons.append(f"rate limit {limit.requests}/{limit.per_seconds:g}s by {key}: "
                                f"{verdict.remaining} left")
        return verdict
