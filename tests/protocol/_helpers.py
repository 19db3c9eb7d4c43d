"""Shared helpers for the protocol tests: requests, error checks, client keys and assertions, a JWKS server."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from ostiary import jwt
from ostiary.server.credentials import digest
from ostiary.store import Client
from tests.conftest import ISSUER, RunningApp, basic, settings_for, start_app

__all__ = [
    "CC",
    "INTROSPECT_URL",
    "ISSUER",
    "JWT_BEARER",
    "TOKEN_URL",
    "JwksServer",
    "app_with",
    "assert_error",
    "assertion",
    "basic",
    "client_token",
    "new_ec_key",
    "public_jwks",
    "store_client",
    "verify_with_jwks",
]

TOKEN_URL = ISSUER + "/token"
INTROSPECT_URL = ISSUER + "/introspect"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CC = {"grant_type": "client_credentials"}


def assert_error(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error: status, JSON body with `error`, never cached."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error, body
    assert r.headers.get("cache-control") == "no-store"
    return body


async def client_token(running: RunningApp, cid: str, secret: str, **form: str) -> dict[str, Any]:
    """A client_credentials token response body for a client_secret_basic client (asserts 200)."""
    r = await running.http.post("/token", data={**CC, **form}, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def store_client(running: RunningApp, *, secret: str | None = None, **fields: Any) -> Client:
    """Store a client record directly, bypassing metadata validation (for states /register refuses)."""
    client = Client(client_id=fields.pop("client_id", uuid.uuid4().hex),
                    secret_digest=digest(secret) if secret else None, **fields)
    await running.provider.clients.create(client)
    return client


@contextlib.asynccontextmanager
async def app_with(database_url: str, **overrides: Any) -> AsyncIterator[RunningApp]:
    """A second app on the same database with other settings."""
    async for app in start_app(settings_for(database_url, **overrides)):
        yield app


def new_ec_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True, auto_kid=True)


def new_rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, private=True, auto_kid=True)


def public_jwks(*keys: ECKey | RSAKey) -> dict[str, Any]:
    return {"keys": [{**k.as_dict(private=False), "kid": k.kid} for k in keys]}


def assertion(
    key: ECKey | RSAKey | OctKey,
    client_id: str,
    *,
    alg: str = "ES256",
    aud: Any = TOKEN_URL,
    lifetime: int = 60,
    drop: tuple[str, ...] = (),
    headers: Mapping[str, Any] | None = None,
    **claims: Any,
) -> str:
    """An RFC 7523 §3 client assertion; `drop` removes claims, keyword arguments override them."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + lifetime,
                            "iat": now, "jti": uuid.uuid4().hex}
    body.update(claims)
    for name in drop:
        body.pop(name, None)
    return jwt.sign(body, key, alg=alg, headers=headers)


def assertion_form(value: str, **extra: str) -> dict[str, str]:
    return {**CC, "client_assertion_type": JWT_BEARER, "client_assertion": value, **extra}


__all__ += ["assertion_form", "new_rsa_key"]


async def verify_with_jwks(running: RunningApp, token: str) -> jwt.VerifiedJWT:
    """Verify an access token against what /jwks publishes (as a resource server would)."""
    r = await running.http.get("/jwks")
    assert r.status_code == 200
    keys = KeySet.import_key_set(r.json())
    return jwt.verify(token, keys, issuer=ISSUER, typ="at+jwt", required=("exp", "iat", "jti"))


class JwksServer:
    """A real HTTP server on 127.0.0.1 (in a thread) serving a client's JWKS (or any JSON) at /jwks."""

    def __init__(self, jwks: Mapping[str, Any] | list[Any]) -> None:
        self.jwks: dict[str, Any] | list[Any] = list(jwks) if isinstance(jwks, list) else dict(jwks)
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = orjson.dumps(outer.jwks)
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @classmethod
    @contextlib.contextmanager
    def serving(cls, jwks: Mapping[str, Any] | list[Any]) -> Iterator[JwksServer]:
        server = cls(jwks)
        server._thread.start()
        try:
            yield server
        finally:
            server._server.shutdown()
            server._server.server_close()
