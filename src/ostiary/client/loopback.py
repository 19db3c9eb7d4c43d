"""Authorization code + PKCE for command-line tools, with a loopback redirect (RFC 8252 §7.3).

``CliLogin.get_token()`` returns a stored token, refreshes it when due, or logs in: it listens on
127.0.0.1 on an ephemeral port, opens the browser at the authorization endpoint, checks ``state``
(and ``iss``, RFC 9207), exchanges the code with its ``code_verifier`` and stores the tokens in a
file only the user can read (0600).
"""

from __future__ import annotations

import asyncio
import hmac
import http.server
import json
import logging
import os
import secrets
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from .auth_methods import ClientAuth, NoClientAuth
from .discovery import DiscoveryError, fetch_metadata
from .pkce import Pkce
from .token import Token, TokenError, token_request

__all__ = ["CliLogin", "LoginError", "read_token_file", "write_token_file"]

log = logging.getLogger("ostiary.client")


class LoginError(Exception):
    """The login did not complete: refused, timed out, or the callback failed a check."""


def write_token_file(path: Path, token: Token) -> None:
    """Write ``token`` atomically to ``path`` with mode 0600 (its directory 0700 if created)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(token.to_dict(), fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def read_token_file(path: Path) -> Token | None:
    try:
        return Token.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


class _CallbackServer(http.server.HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Callback)  # RFC 8252 §7.3: loopback IP, any free port
        self.result: dict[str, str] | None = None
        self.done = threading.Event()


class _Callback(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _CallbackServer)
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404)
            return
        server.result = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = b"<!doctype html><title>Signed in</title><p>You can close this window and go back to the terminal."
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        server.done.set()

    def log_message(self, format: str, *args: object) -> None:
        return  # the query holds the authorization code: keep it out of the terminal


@dataclass
class CliLogin:
    """Log a user in from a terminal and keep their tokens fresh. Raises LoginError or TokenError."""

    client_id: str
    token_file: Path
    issuer: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    scope: str = "openid offline_access"
    client_auth: ClientAuth | None = None
    open_browser: Callable[[str], object] = webbrowser.open
    timeout: float = 300.0
    refresh_ratio: float = 0.8
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0), repr=False)
    _token: Token | None = field(default=None, init=False, repr=False)
    # RFC 9207 §2.4: once the issuer's metadata says it sends `iss`, a response without it is refused.
    _iss_required: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _auth(self) -> ClientAuth:
        return self.client_auth or NoClientAuth(self.client_id)

    def _endpoints(self) -> tuple[str, str]:
        if self.authorization_endpoint is None or self.token_endpoint is None:
            if self.issuer is None:
                raise LoginError("give issuer, or both authorization_endpoint and token_endpoint")
            try:
                doc = fetch_metadata(self.http, self.issuer)
            except DiscoveryError as exc:
                raise LoginError(str(exc)) from exc
            self._iss_required = doc.get("authorization_response_iss_parameter_supported") is True
            self.authorization_endpoint = self.authorization_endpoint or str(doc["authorization_endpoint"])
            self.token_endpoint = self.token_endpoint or str(doc["token_endpoint"])
        return self.authorization_endpoint, self.token_endpoint

    def _wait_for_callback(self, authorize_url: Callable[[str], str]) -> tuple[dict[str, str], str]:
        server = _CallbackServer()
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            url = authorize_url(redirect_uri)
            print(f"Opening the browser to sign in. If it does not open, visit:\n  {url}", file=sys.stderr)
            self.open_browser(url)
            if not server.done.wait(self.timeout):
                raise LoginError("timed out waiting for the browser to come back")
        finally:
            server.shutdown()
            server.server_close()
        assert server.result is not None
        return server.result, redirect_uri

    def login(self) -> Token:
        """Run the browser flow; raises LoginError or TokenError."""
        authorization_endpoint, token_endpoint = self._endpoints()
        pkce = Pkce.generate()
        state = secrets.token_urlsafe(24)

        def authorize_url(redirect_uri: str) -> str:
            query = {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scope,
                "state": state,
                "code_challenge": pkce.code_challenge,
                "code_challenge_method": pkce.code_challenge_method,
            }
            sep = "&" if "?" in authorization_endpoint else "?"
            return f"{authorization_endpoint}{sep}{urlencode(query)}"

        params, redirect_uri = self._wait_for_callback(authorize_url)
        if not hmac.compare_digest(params.get("state", "").encode(), state.encode()):
            raise LoginError("the state parameter does not match: possible CSRF, login aborted")
        if self.issuer is not None and "iss" in params and params["iss"] != self.issuer:  # RFC 9207 §2.4
            raise LoginError("the authorization response comes from another issuer (mix-up attack?)")
        if self._iss_required and "iss" not in params:  # RFC 9207 §2.4: advertised, so it must be there
            raise LoginError("the authorization response has no iss although the issuer sends one (mix-up attack?)")
        if "error" in params:
            raise LoginError(f"{params['error']}: {params.get('error_description', '')}".rstrip(": "))
        if not params.get("code"):
            raise LoginError("no authorization code in the callback")
        form = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": pkce.code_verifier,
        }
        token = token_request(self.http, token_endpoint, form, self._auth())
        self._save(token)
        return token

    def _save(self, token: Token) -> None:
        self._token = token
        write_token_file(self.token_file, token)

    def refresh(self, token: Token) -> Token:
        """Use the refresh token (RFC 6749 §6); the old refresh token is kept if none comes back."""
        assert token.refresh_token is not None
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        fresh = token_request(self.http, self._endpoints()[1], form, self._auth())
        if fresh.refresh_token is None:
            fresh = Token(**{**fresh.to_dict(), "refresh_token": token.refresh_token})
        self._save(fresh)
        return fresh

    def get_token(self) -> Token:
        with self._lock:
            token = self._token or read_token_file(self.token_file)
            now = time.time()
            if token is not None and not token.refresh_due(now, self.refresh_ratio):
                self._token = token
                return token
            if token is not None and token.refresh_token:
                try:
                    return self.refresh(token)
                except TokenError as exc:
                    log.info("refresh failed (%s); signing in again", exc.error)
            return self.login()

    async def aget_token(self) -> Token:
        return await asyncio.to_thread(self.get_token)

    def invalidate(self, token: Token) -> None:
        if self._token is not None and self._token.access_token == token.access_token:
            self._token = Token(**{**token.to_dict(), "expires_at": token.issued_at})  # due now: refresh next
