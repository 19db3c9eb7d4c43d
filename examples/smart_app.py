"""A small SMART on FHIR app (public client, PKCE), launched by an EHR or on its own.

    python examples/smart_app.py --client-id APP_ID            # listens on http://localhost:9000

GET /launch?iss=..&launch=..   EHR launch (the launcher opens it): discover the server from `iss`
GET /                          standalone launch against --fhir (patient picked at sign-in)
GET /callback                  exchange the code, then show the patient the token is for

It follows SMART App Launch 2.2: `{iss}/.well-known/smart-configuration`, `aud={iss}`, S256 PKCE,
`state` checked, and the launch context taken from the token response. Needs only `pip install ostiary`.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from ostiary.client import Pkce

EHR_SCOPE = "openid fhirUser launch patient/*.rs"
STANDALONE_SCOPE = "openid fhirUser launch/patient patient/*.rs"


class SmartApp:
    def __init__(self, client_id: str, base_url: str, fhir: str) -> None:
        self.client_id = client_id
        self.base_url = base_url  # where this app is reached: its redirect URI is base_url + /callback
        self.fhir = fhir
        self.pending: dict[str, dict[str, str]] = {}  # state -> verifier, token endpoint, iss
        self.http = httpx.Client(timeout=10.0)

    def authorize_url(self, iss: str, scope: str, launch: str | None) -> str:
        config = self.http.get(iss.rstrip("/") + "/.well-known/smart-configuration").raise_for_status().json()
        pkce, state = Pkce.generate(), secrets.token_urlsafe(16)
        self.pending[state] = {"verifier": pkce.code_verifier, "token": config["token_endpoint"], "iss": iss}
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.base_url + "/callback",
                 "scope": scope, "state": state, "aud": iss, "code_challenge": pkce.code_challenge,
                 "code_challenge_method": pkce.code_challenge_method}
        if launch:
            query["launch"] = launch
        return f"{config['authorization_endpoint']}?{urlencode(query)}"

    def callback(self, query: dict[str, str]) -> str:
        started = self.pending.pop(query.get("state", ""), None)
        if started is None:
            return "<p>Unknown or reused state: start the launch again.</p>"
        if "error" in query:
            why = f"{query['error']} {query.get('error_description', '')}"
            return f"<p>Not authorized: {html.escape(why)}</p>"
        tokens = self.http.post(started["token"], data={
            "grant_type": "authorization_code", "code": query.get("code", ""), "client_id": self.client_id,
            "redirect_uri": self.base_url + "/callback", "code_verifier": started["verifier"],
        }).json()
        if "access_token" not in tokens:
            return f"<p>Token request refused: {html.escape(str(tokens))}</p>"
        patient = self._read(started["iss"], f"Patient/{tokens.get('patient')}", tokens["access_token"])
        names = patient.get("name") or [{}]
        name = " ".join([*names[0].get("given", []), names[0].get("family", "")]).strip() or "(no name)"
        return (f"<h1>Patient: {html.escape(name)}</h1><p>id <code>{html.escape(str(tokens.get('patient')))}</code>, "
                f"born {html.escape(str(patient.get('birthDate', '?')))}</p>"
                f"<p>Granted: <code>{html.escape(tokens.get('scope', ''))}</code></p>")

    def _read(self, iss: str, path: str, token: str) -> dict[str, Any]:
        r = self.http.get(f"{iss.rstrip('/')}/{path}", headers={"Authorization": f"Bearer {token}",
                                                                 "Accept": "application/fhir+json"})
        return dict(r.json()) if r.status_code == 200 else {}


def make_server(app: SmartApp, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/launch" and "iss" in query:
                    return self._redirect(app.authorize_url(query["iss"], EHR_SCOPE, query.get("launch")))
                if url.path == "/":
                    return self._redirect(app.authorize_url(app.fhir, STANDALONE_SCOPE, None))
                if url.path == "/callback":
                    return self._page(200, app.callback(query))
                return self._page(404, "<p>Not here.</p>")
            except httpx.HTTPError as exc:
                return self._page(502, f"<p>The server could not be reached: {html.escape(str(exc))}</p>")

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _page(self, status: int, body: str) -> None:
            data = f"<!doctype html><meta charset=utf-8><title>Sample SMART app</title>{body}".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"smart_app: {format % args}\n")

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client-id", required=True, help="the app's client_id (registered with redirect "
                                                           "URI http://localhost:PORT/callback)")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--fhir", default="http://127.0.0.1:8000/fhir", help="FHIR base for a standalone launch")
    args = parser.parse_args(argv)
    app = SmartApp(args.client_id, f"http://localhost:{args.port}", args.fhir)
    server = make_server(app, "127.0.0.1", args.port)
    print(f"Sample SMART app on http://localhost:{args.port} (launch URL http://localhost:{args.port}/launch)",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
