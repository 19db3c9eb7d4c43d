"""`ostiary serve` with the default IP-literal issuer: passkeys are off (WebAuthn Level 2 §5.1.4.1 has no
RP ID for an IP address) and the server says so once at start, whatever the number of workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e._server import start_server

pytestmark = [pytest.mark.e2e]


def test_ip_issuer_says_once_that_passkeys_are_off(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--no-demo", "--workers", "2")
    try:
        with server.http() as http:
            assert http.post("/account/passkeys/options", data={"csrf_token": "x"}).status_code == 404
            login = http.get("/signin", params={"return_to": "/account"}, follow_redirects=True)
            assert "passkey" not in login.text.lower()
    finally:
        server.stop()
    assert server.stderr.count("passkeys are off: the issuer's host 127.0.0.1 is an IP address") == 1, server.stderr
