"""Issue 9 item 12, the small ones: clean errors instead of tracebacks, and settings that were ignored."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner

from ostiary.cli import main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OSTIARY_"):
            monkeypatch.delenv(name)


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def test_keys_rotate_with_an_unknown_alg_is_a_usage_error(tmp_path: Path) -> None:
    for alg in ("HS256", "nope"):
        result = invoke("keys", "rotate", "--alg", alg, "--database-url", f"sqlite:///{tmp_path / 'k.db'}")
        assert result.exit_code == 2 and "Invalid value for '--alg'" in result.output, result.output


@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            seen.append({"authorization": self.headers.get("Authorization"), "form": parse_qs(body)})
            answer = json.dumps({"access_token": "at-1", "token_type": "Bearer", "expires_in": 60}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", seen
    finally:
        server.shutdown()
        server.server_close()


def test_token_reads_the_secret_file_and_the_scope_from_the_environment(
        tmp_path: Path, token_endpoint: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = token_endpoint
    (tmp_path / "secret").write_text("s3cret\n")
    env = {"OSTIARY_CLIENT_ID": "batch", "OSTIARY_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
           "OSTIARY_SCOPE": "api:read", "OSTIARY_TOKEN_URL": url}
    result = invoke("token", env=env)
    assert result.exit_code == 0 and result.output.strip() == "at-1", result.output
    (request,) = seen
    assert request["authorization"] == "Basic " + base64.b64encode(b"batch:s3cret").decode()
    assert request["form"]["scope"] == ["api:read"]


def test_serve_refuses_a_port_out_of_range() -> None:
    result = invoke("serve", "--port", "99999")
    assert result.exit_code == 2 and "99999 is not in the range" in result.output, result.output


def test_serve_on_a_busy_port_fails_in_one_line_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("serve", "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 's.db'}")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"Error: cannot listen on 127.0.0.1:{port}: address already in use"
    assert not (tmp_path / "s.db").exists()  # failed before touching the database


def test_password_stdin_with_empty_input_says_so(tmp_path: Path) -> None:
    result = invoke("user", "create", "alice", "--password-stdin", "--database-url", f"sqlite:///{tmp_path / 'u.db'}",
                    input="\n")
    assert result.exit_code == 2 and "empty password" in result.output, result.output
