"""A real `ostiary serve` against hostile clients on loopback: huge bodies (memory stays flat) and slow
clients (a header-read deadline and a connection cap keep the server serving)."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._server import ServerProcess, proc_available, start_server
from tests.e2e._slow import slowloris

pytestmark = [pytest.mark.e2e]

HUGE = 200 * 1024 * 1024
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(tmp_path_factory.mktemp("e2e-hostile"), "--no-demo",
                     env={"OSTIARY_HTTP__HEADER_TIMEOUT": "2", "OSTIARY_HTTP__MAX_CONNECTIONS": "150",
                          "OSTIARY_KEYS__GENERATE": "ES256"})
    try:
        yield s
    finally:
        s.stop()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _post_huge(port: int, *, chunked: bool, deadline: float = 20.0) -> tuple[bytes, int]:
    """POST 200 MB to /token (declared or chunked), stopping as soon as the server answers; the status line
    and the bytes sent. Reading the answer before sending more avoids losing it to the reset that closing
    a connection with unread data brings."""
    head = (b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + (b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % HUGE) + b"\r\n")
    piece = b"a" * (64 * 1024)
    frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        stop = time.monotonic() + deadline
        with contextlib.suppress(OSError):
            while sent < HUGE and time.monotonic() < stop:
                if select.select([sock], [], [], 0.2 if sent == 0 else 0)[0]:
                    break  # the server has answered
                sock.sendall(frame)
                sent += len(piece)
            while b"\r\n" not in answer:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
    return answer.split(b"\r\n", 1)[0], sent


@pytest.mark.skipif(not proc_available(), reason="needs Linux /proc")
def test_rfc9110_15_5_14_huge_bodies_leave_server_memory_flat(server: ServerProcess) -> None:
    with server.http() as http:  # warm up first: lazy imports and caches are not what is measured
        http.post("/token", data={"grant_type": "client_credentials"})
    before = _rss(server.proc.pid)
    status, sent = _post_huge(server.port, chunked=False)
    assert status.startswith(b"HTTP/1.1 413"), status
    status, sent = _post_huge(server.port, chunked=True)
    # 413, or the reset that closing a connection with unread data brings when the answer was not read in time
    assert status.startswith(b"HTTP/1.1 413") or status == b"", status
    assert sent < HUGE, "the server read the whole streamed body"
    grown = _rss(server.proc.pid) - before
    assert grown < 40 * MiB, f"server memory grew by {grown // MiB} MiB for a 200 MB body"
    with server.http() as http:  # and it still serves
        assert http.get("/healthz").status_code == 200


def test_slow_clients_neither_exhaust_the_server_nor_starve_normal_requests(server: ServerProcess) -> None:
    # 200 connections that never finish their headers, past the cap of 150, for twice the header deadline
    report = slowloris("127.0.0.1", server.port, clients=200, seconds=4.0, normal_requests=20)
    assert report.opened == 200
    assert report.failures == 0 and len(report.latencies_ms) == 20, report
    assert report.still_open == 0, f"{report.still_open} slow connections outlived the header deadline"
