"""Slow clients (slowloris) against a server on loopback: bounded in count and time, for tests and measuring."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class SlowReport:
    opened: int
    still_open: int  # slow connections the server had not closed when the drip stopped
    latencies_ms: list[float] = field(default_factory=list)  # normal requests served meanwhile
    failures: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("inf")

    @property
    def worst(self) -> float:
        return max(self.latencies_ms) if self.latencies_ms else float("inf")


def _drip(socks: list[socket.socket], stop: threading.Event, interval: float) -> None:
    """Each connection sends one more header byte every `interval` seconds and never finishes its headers."""
    while not stop.wait(interval):
        for sock in socks:
            if sock.fileno() < 0:
                continue
            try:
                sock.send(b"a")
            except OSError:
                sock.close()


def _closed_by_server(sock: socket.socket) -> bool:
    if sock.fileno() < 0:
        return True
    sock.setblocking(False)
    try:
        sock.recv(1024)  # end of stream, or an answer (408, 400) the server closes after
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def slowloris(host: str, port: int, *, clients: int = 200, seconds: float = 6.0, interval: float = 0.5,
              normal_requests: int = 40, url: str = "/jwks", scheme: str = "http") -> SlowReport:
    """Hold `clients` connections dripping headers for `seconds` while timing `normal_requests` requests."""
    socks: list[socket.socket] = []
    for _ in range(clients):
        try:
            sock = socket.create_connection((host, port), timeout=2)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(sock)
        except OSError:
            break
    stop = threading.Event()
    dripper = threading.Thread(target=_drip, args=(socks, stop, interval), daemon=True)
    dripper.start()
    report = SlowReport(opened=len(socks), still_open=0)
    deadline = time.monotonic() + seconds
    pause = seconds / (normal_requests + 1)
    with httpx.Client(base_url=f"{scheme}://{host}:{port}", verify=False, timeout=5) as http:
        for _ in range(normal_requests):  # all of them, however slow the machine: a missing one is a failure
            start = time.monotonic()
            try:
                ok = http.get(url, headers={"Connection": "close"}).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                report.latencies_ms.append((time.monotonic() - start) * 1000)
            else:
                report.failures += 1
            time.sleep(pause)
    with contextlib.suppress(Exception):
        time.sleep(max(0.0, deadline - time.monotonic()))
    stop.set()
    dripper.join(5)
    report.still_open = sum(not _closed_by_server(s) for s in socks)
    for sock in socks:
        sock.close()
    return report
