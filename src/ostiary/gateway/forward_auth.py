"""Forward-auth (issue item 7): the edge check for proxies teams already run.

nginx ``auth_request``, Caddy ``forward_auth`` and Traefik ForwardAuth send the original method and URI in
``X-Original-Method``/``X-Original-URI`` or ``X-Forwarded-Method``/``X-Forwarded-Uri``; the path is
checked exactly as the gateway checks its own requests. An allowed request gets 200 with the identity
fields for the proxy to pass on. Caddy and Traefik copy any other answer to the client as it is; nginx
turns everything but 401 and 403 into 500, so on ``/_ostiary/auth/nginx`` every other refusal is a 403
whose ``X-Ostiary-Status`` field carries the real status for the nginx configuration to restore.
Only proxies listed in ``trusted_proxies`` may ask; the caller's address is then their ``X-Real-IP``.
"""

from __future__ import annotations

from .asgi import Scope, Send, send_json
from .decision import Decision, EdgeCheck
from .headers import IDENTITY_HEADERS, identity_fields

__all__ = ["FORWARD_AUTH_PATHS", "answer_forward_auth"]

FORWARD_AUTH_PATHS = (b"/_ostiary/auth", b"/_ostiary/auth/nginx")


def _first(fields: list[tuple[bytes, bytes]], *names: bytes) -> str | None:
    for wanted in names:
        for key, value in fields:
            if key.lower() == wanted:
                return value.decode("latin-1")
    return None


def _client_address(fields: list[tuple[bytes, bytes]], peer: str) -> str:
    real = _first(fields, b"x-real-ip")
    if real:
        return real.strip()
    chain = _first(fields, b"x-forwarded-for")
    return chain.split(",")[-1].strip() if chain else peer  # the hop the proxy itself saw


async def answer_forward_auth(edge: EdgeCheck, trusted: frozenset[str], scope: Scope, send: Send,
                              request_id: str) -> Decision:
    fields: list[tuple[bytes, bytes]] = scope["headers"]
    peer = scope["client"][0] if scope.get("client") else ""
    nginx = scope.get("raw_path", b"").rstrip(b"/").endswith(b"/nginx")
    method = _first(fields, b"x-original-method", b"x-forwarded-method")
    uri = _first(fields, b"x-original-uri", b"x-forwarded-uri")
    if peer not in trusted:
        decision = Decision(403, "access_denied", "forward-auth is answered only to trusted proxies")
    elif not method or not uri:
        decision = Decision(400, "invalid_request", "X-Original-Method and X-Original-URI (or X-Forwarded-*) needed")
    else:
        authorization = [v.decode("latin-1") for k, v in fields if k.lower() == b"authorization"]
        decision = await edge.decide(method.upper(), uri.partition("?")[0].encode("latin-1"), authorization,
                                     _client_address(fields, peer))
    headers = dict(decision.headers)
    headers["x-request-id"] = request_id
    if decision.allowed:
        # every identity field is present, empty when unknown (a public route): a proxy that copies fields
        # from this answer then overwrites a caller-sent one instead of passing it (or a placeholder) on
        headers.update({name.lower(): "" for name in IDENTITY_HEADERS})
        headers.update({name.lower(): value for name, value in identity_fields(decision.principal)})
        await send_json(send, 200, {"allowed": True, "request_id": request_id}, headers)
        return decision
    status = decision.status
    if nginx and status not in (401, 403):
        headers["x-ostiary-status"] = str(status)
        status = 403
    await send_json(send, status, {"error": decision.error, "error_description": decision.description,
                                   "request_id": request_id}, headers)
    return decision
