"""Real `ostiary gateway` processes and the recording upstream, for the gateway's end-to-end tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e._server import OSTIARY, clean_env, free_port, stop_group

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    name: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop_group(self.proc)


def _spawn(cmd: list[str], workdir: Path, name: str, port: int, env: dict[str, str] | None = None) -> Process:
    log = workdir / f"{name}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=clean_env(env), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Process(proc, port, log, name)


def _wait(process: Process, path: str, timeout: float = 20.0) -> Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"process exited with {process.proc.returncode}:\n{process.output[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(process.base_url + path, timeout=1.0).status_code < 500:
                return process
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"not ready in {timeout} s:\n{process.output[-3000:]}")


def start_upstream(workdir: Path) -> Process:
    port = free_port()
    return _wait(_spawn([sys.executable, "-m", "tests.e2e._upstream", str(port)], workdir, "upstream", port), "/__log")


def start_gateway(workdir: Path, config: str, *args: str) -> Process:
    port = free_port()
    path = workdir / f"gateway-{port}.toml"
    path.write_text(config)
    cmd = [OSTIARY, "gateway", "--config", str(path), "--port", str(port), *args]
    return _wait(_spawn(cmd, workdir, "gateway", port), "/_ostiary/health")


def upstream_log(upstream: Process) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = httpx.get(upstream.base_url + "/__log", timeout=5).json()
    return log


def clear_upstream_log(upstream: Process) -> None:
    httpx.delete(upstream.base_url + "/__log", timeout=5)


def header_values(record: dict[str, Any], name: str) -> list[str]:
    """Values of every field whose name matches `name` case-insensitively with `_` equal to `-`."""
    want = name.lower().replace("_", "-")
    return [v for k, v in record["headers"] if k.lower().replace("_", "-") == want]
