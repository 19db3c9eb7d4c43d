"""A tiny SMART app on 127.0.0.1 (in a thread), written the way the SMART App Launch guide describes one.

GET /launch?iss=..&launch=..   EHR launch: discover the server from iss, send the browser to /authorize
GET /start                     standalone launch (launch/patient) against the server's FHIR base
GET /callback?code=..&state=.. exchange the code (PKCE, client_secret_basic); the token response is kept
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

EHR_SCOPE = "openid fhirUser launch patient/*.rs"
STANDALONE_SCOPE = "openid fhirUser launch/patient patient/*.rs"


@dataclass
class SmartApp:
    httpd: ThreadingHTTPServer
    fhir_base: str
    client_id: str = ""
    client_secret: str = ""
    launches: list[dict[str, str]] = field(default_factory=list)  # the query of each /launch
    tokens: list[dict[str, Any]] = field(default_factory=list)  # every token response received
    errors: list[str] = field(default_factory=list)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)  # state -> verifier, token endpoint

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/callback"

    @property
    def launch_uri(self) -> str:
        return self.base_url + "/launch"

    def authorize_url(self, iss: str, scope: str, launch: str | None = None) -> str:
        """Discover the endpoints from {iss}/.well-known/smart-configuration; PKCE S256; aud = iss."""
        config = httpx.get(iss.rstrip("/") + "/.well-known/smart-configuration", timeout=10).json()
        assert "S256" in config["code_challenge_methods_supported"]
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        self.pending[state] = {"verifier": verifier, "token_endpoint": config["token_endpoint"]}
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "scope": scope, "state": state, "aud": iss, "code_challenge": challenge,
                  "code_challenge_method": "S256", **({"launch": launch} if launch else {})}
        return f"{config['authorization_endpoint']}?{urlencode(params)}"

    def callback(self, query: dict[str, str]) -> str:
        pending = self.pending.pop(query.get("state", ""), None)
        if pending is None or "code" not in query:
            self.errors.append(f"callback without a known state or code: {query}")
            return "error"
        r = httpx.post(pending["token_endpoint"], data={
            "grant_type": "authorization_code", "code": query["code"], "redirect_uri": self.redirect_uri,
            "code_verifier": pending["verifier"]}, auth=(self.client_id, self.client_secret), timeout=10)
        if r.status_code != 200:
            self.errors.append(f"token endpoint: {r.status_code} {r.text}")
            return "error"
        body = r.json()
        self.tokens.append(body)
        return f"patient {body.get('patient')} encounter {body.get('encounter')}"


@contextlib.contextmanager
def smart_app(fhir_base: str) -> Iterator[SmartApp]:
    app: SmartApp

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            try:
                if parts.path == "/launch":
                    app.launches.append(query)
                    return self._redirect(app.authorize_url(query["iss"], EHR_SCOPE, query["launch"]))
                if parts.path == "/start":
                    return self._redirect(app.authorize_url(app.fhir_base, STANDALONE_SCOPE))
                if parts.path == "/callback":
                    return self._page(app.callback(query))
            except Exception as exc:  # shown in the test's failure, not swallowed
                app.errors.append(repr(exc))
                return self._page("error", 500)
            self._page("not found", 404)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _page(self, text: str, status: int = 200) -> None:
            body = f"<!doctype html><title>SMART app</title><h1 id=result>{html.escape(text)}</h1>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    app = SmartApp(httpd, fhir_base)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        httpd.shutdown()
        httpd.server_close()
