"""A real `ostiary serve` process for end-to-end and interop tests.

The server runs in its own process group on a free 127.0.0.1 port, in a temporary working
directory, with an environment stripped of the developer's own OSTIARY_* variables. Every wait
is bounded. On Linux the worker process that served a response can be found through /proc,
which lets the multi-worker tests prove that each worker took part.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

OSTIARY = str(Path(sys.executable).parent / "ostiary")
STARTUP_TIMEOUT = 45.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 60.0
HTTP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without OSTIARY_* settings, unbuffered, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def poll(check: Callable[[], Any], *, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Call `check` until it returns something truthy; raise AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last result: {last!r}")
        time.sleep(interval)


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    base_url: str  # where to connect (always 127.0.0.1)
    issuer: str  # what the server calls itself
    database_url: str  # for `ostiary ... --database-url`
    workdir: Path
    env: dict[str, str]
    verify: bool = True
    _out: Path = field(init=False)
    _err: Path = field(init=False)

    def __post_init__(self) -> None:
        self._out = self.workdir / f"serve-{self.port}.out"
        self._err = self.workdir / f"serve-{self.port}.err"

    @property
    def stdout(self) -> str:
        return self._out.read_text(errors="replace") if self._out.exists() else ""

    @property
    def stderr(self) -> str:
        return self._err.read_text(errors="replace") if self._err.exists() else ""

    def http(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return httpx.Client(base_url=self.base_url, verify=self.verify, **kwargs)

    def cli(self, *args: str, check: bool = True, env: Mapping[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `ostiary ARGS` in the server's working directory with the server's environment."""
        result = subprocess.run(
            [OSTIARY, *args], cwd=self.workdir, env={**self.env, **(env or {})}, capture_output=True,
            text=True, timeout=CLI_TIMEOUT, input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ostiary {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def stop(self) -> None:
        stop_group(self.proc)

    # -- which worker served a response (Linux /proc) --------------------------------------

    def worker_pids(self) -> list[int]:
        """The server's uvicorn worker processes (empty with --workers 1)."""
        children: set[int] = set()
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            children.update(int(p) for p in task.read_text().split())
        workers = []
        for pid in sorted(children):
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:  # multiprocessing's helper, not a worker
                    workers.append(pid)
        return workers

    def serving_pid(self, response: httpx.Response) -> int | None:
        """The process holding the server side of the connection that carried `response`."""
        stream = response.extensions.get("network_stream")
        if stream is None:
            return None
        client_port = stream.get_extra_info("client_addr")[1]
        inode = _server_socket_inode(self.port, client_port)
        if inode is None:
            return None
        target = f"socket:[{inode}]"
        for pid in [*self.worker_pids(), self.proc.pid]:
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                            return pid
        return None

    def on_each_worker(self, call: Callable[[httpx.Client], httpx.Response],
                       attempts: int = 60) -> dict[int, httpx.Response]:
        """Run `call` on fresh connections until every worker has answered once; pid -> response."""
        workers = set(self.worker_pids())
        seen: dict[int, httpx.Response] = {}
        for _ in range(attempts):
            with self.http() as client:
                response = call(client)
                pid = self.serving_pid(response)
            if pid is not None and pid not in seen:
                seen[pid] = response
            if workers and workers <= set(seen):
                break
        return seen


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and its children: TERM, then KILL after STOP_TIMEOUT."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    want_local, want_remote = f"{server_port:04X}", f"{client_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[1].rsplit(":", 1)[1] == want_local and cols[2].rsplit(":", 1)[1] == want_remote:
                    return cols[9]
    return None


def proc_available() -> bool:
    return Path("/proc/self/task").is_dir() and Path("/proc/net/tcp").exists()


class PortTaken(RuntimeError):
    """Another process answered on the port we picked (or got it first)."""


def start_server(workdir: Path, *args: str, database_url: str | None = None, env: Mapping[str, str] | None = None,
                 tls: bool = False, wait: bool = True) -> ServerProcess:
    """Start `ostiary serve --port PORT ARGS` in `workdir` and (with `wait`) wait until /healthz answers 200.

    "{port}" in an `env` value becomes the chosen port. Without `database_url` the server uses its
    default SQLite file in `workdir`. A port another process took first is replaced (3 tries).
    """
    for attempt in range(3):
        port = free_port()
        server = _launch(workdir, args, port, database_url, env, tls)
        try:
            if wait:
                _wait_healthy(server)
        except PortTaken:
            server.stop()
            if attempt == 2:
                raise
            continue
        except BaseException:
            server.stop()
            raise
        return server
    raise AssertionError("unreachable")


def _launch(workdir: Path, args: Sequence[str], port: int, database_url: str | None,
            env: Mapping[str, str] | None, tls: bool) -> ServerProcess:
    scheme = "https" if tls else "http"
    full_env = clean_env({k: v.replace("{port}", str(port)) for k, v in (env or {}).items()})
    cmd: list[str] = [OSTIARY, "serve", "--port", str(port), *args]
    if database_url:
        cmd += ["--database-url", database_url]
    out = (workdir / f"serve-{port}.out").open("wb")
    err = (workdir / f"serve-{port}.err").open("wb")
    try:
        proc = subprocess.Popen(cmd, cwd=workdir, env=full_env, stdout=out, stderr=err, start_new_session=True)
    finally:
        out.close()
        err.close()
    base_url = f"{scheme}://127.0.0.1:{port}"
    return ServerProcess(
        proc=proc, port=port, base_url=base_url, issuer=full_env.get("OSTIARY_ISSUER", base_url),
        database_url=database_url or f"sqlite:///{workdir / 'ostiary.db'}", workdir=workdir, env=full_env,
        verify=not tls,
    )


def _wait_healthy(server: ServerProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with server.http(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                if "already in use" in server.stderr:
                    raise PortTaken(server.port)
                raise RuntimeError(f"ostiary serve exited with {server.proc.returncode}:\n"
                                   f"{server.stdout}\n{server.stderr[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                r = client.get("/healthz")
                if r.status_code == 200:
                    if not proc_available():
                        return
                    pid = server.serving_pid(r)
                    if pid in (server.proc.pid, *server.worker_pids()):
                        return
                    if pid is not None:
                        raise PortTaken(server.port)
            time.sleep(0.2)
    raise RuntimeError(f"ostiary serve did not become healthy in {STARTUP_TIMEOUT} s:\n{server.stderr[-4000:]}")


def token_response(client: httpx.Client, client_id: str, secret: str, **form: str) -> httpx.Response:
    return client.post("/token", data={"grant_type": "client_credentials", **form}, auth=(client_id, secret))


def jwks_verify(token: str, jwks: Mapping[str, Any], *, issuer: str, audience: str | None = None) -> Any:
    """Verify an RFC 9068 access token with joserfc against a JWKS document; returns the token."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    decoded = jwt.decode(token, KeySet.import_key_set(dict(jwks)), algorithms=["ES256", "RS256", "PS256", "EdDSA"])
    assert decoded.header["typ"].lower() in ("at+jwt", "application/at+jwt"), decoded.header
    claims: dict[str, Any] = {"iss": {"essential": True, "value": issuer}, "exp": {"essential": True}}
    if audience:
        claims["aud"] = {"essential": True, "value": audience}
    jwt.JWTClaimsRegistry(**claims).validate(decoded.claims)
    return decoded


def header_of(token: str) -> dict[str, Any]:
    import base64
    import json

    head = token.split(".", 1)[0]
    parsed: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return parsed
