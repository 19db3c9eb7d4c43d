"""Test helpers for the guard and client tests: a real issuer on 127.0.0.1 and token factories."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from ostiary import jwt
from ostiary.keys import SigningKey, jwks_document

AUDIENCE = "https://api.example.test"


class IssuerServer:
    """Discovery, JWKS and introspection on 127.0.0.1 with hit counters and failure modes.

    ``mode``: "ok", "error" (HTTP 500), "hang" (never answers until stopped).
    ``oidc_only``: answer 404 on the RFC 8414 URL so discovery falls back to OpenID Connect.
    """

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self.hits: Counter[str] = Counter()
        self.mode = "ok"
        self.oidc_only = False
        self.introspection: dict[str, dict[str, Any]] = {}
        self.introspection_auth: list[str] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, doc: object) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _gate(self) -> bool:
                if outer.mode == "hang":
                    outer.release.wait(30)
                    return False
                if outer.mode == "error":
                    self._send(500, {"error": "server_error"})
                    return False
                return True

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                outer.hits[path] += 1
                if not self._gate():
                    return
                if path == "/.well-known/oauth-authorization-server" and not outer.oidc_only:
                    self._send(200, outer.metadata())
                elif path == "/.well-known/openid-configuration":
                    self._send(200, outer.metadata())
                elif path == "/jwks":
                    self._send(200, jwks_document(outer.keys))
                elif path == "/.well-known/smart-configuration":  # SMART App Launch 2.2 §Metadata
                    self._send(200, {**outer.metadata(), "authorization_endpoint": f"{outer.issuer}/authorize",
                                     "capabilities": ["launch-standalone"]})
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                outer.hits[self.path] += 1
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if not self._gate():
                    return
                if self.path == "/introspect":
                    outer.introspection_auth.append(self.headers.get("Authorization", ""))
                    self._send(200, outer.introspection.get(form.get("token", ""), {"active": False}))
                else:
                    self._send(404, {"error": "not_found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "token_endpoint": f"{self.issuer}/token",
            "introspection_endpoint": f"{self.issuer}/introspect",
        }

    def __enter__(self) -> IssuerServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port on 127.0.0.1 where (right now) nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def access_token(
    key: SigningKey,
    issuer: str,
    *,
    audience: str | list[str] = AUDIENCE,
    scope: str = "read",
    typ: str | None = "at+jwt",
    lifetime: int = 300,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """An RFC 9068 access token signed by ``key``; keyword claims override the defaults."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": issuer,
        "sub": "user-1",
        "aud": audience,
        "client_id": "client-1",
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "scope": scope,
    }
    body.update(claims)
    return jwt.sign({k: v for k, v in body.items() if v is not None}, key, typ=typ, headers=headers)


def raw_es256_token(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A compact JWS signed with ``cryptography`` directly, for headers joserfc refuses to write."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    from ostiary.keys import b64url

    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    private = key.jwk.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
