"""The safe fetcher for client-supplied URLs (SSRF; RFC 9700 §4.15, OWASP ASVS V12.6).

Only loopback traffic is ever sent: names are resolved by an injected resolver, refused addresses
must be refused before any socket connects (a patched ``socket.connect`` fails the test), and the
allowed path to a public address is checked against a mock transport that records the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx
import pytest

from ostiary.outbound import FetchError, SafeFetcher, address_refusal

PUBLIC = "93.184.215.14"  # only ever handed to a mock transport: no traffic leaves this machine
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def resolver_for(*addresses: str, calls: list[str] | None = None) -> Callable[[str, int], Awaitable[Sequence[str]]]:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)

    return resolve


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: refusals must come before connecting."""

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"a connection was attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


REFUSED = ["10.1.2.3", "172.16.5.4", "172.31.255.1", "192.168.1.1", "0.0.0.1", "100.64.0.1", "100.127.255.254",
           "169.254.169.254", "127.0.0.1", "127.8.9.10", "224.0.0.1", "239.255.255.250", "255.255.255.255",
           "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
           "64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:a00:1::1", "192.0.2.10", "198.18.0.1"]


@pytest.mark.parametrize("address", REFUSED)
async def test_ssrf_name_resolving_to_internal_address_is_refused_before_connecting(address, no_connections):
    fetcher = SafeFetcher(resolver=resolver_for(address))
    with pytest.raises(FetchError) as caught:
        await fetcher.get("https://keys.attacker.example/jwks")
    assert str(caught.value) == "the URL could not be fetched"  # generic: nothing about what listens where
    await fetcher.aclose()


@pytest.mark.parametrize("url", ["https://10.0.0.5/jwks", "https://[::1]:8443/jwks", "https://169.254.169.254/",
                                 "https://[::ffff:192.168.0.1]/", "https://[fe80::1%25eth0]/"])
async def test_ssrf_ip_literal_of_internal_address_is_refused_without_resolving(url, no_connections):
    calls: list[str] = []
    fetcher = SafeFetcher(resolver=resolver_for(PUBLIC, calls=calls))
    with pytest.raises(FetchError):
        await fetcher.get(url)
    assert calls == []
    await fetcher.aclose()


async def test_ssrf_one_internal_address_among_public_ones_refuses_the_name(no_connections):
    fetcher = SafeFetcher(resolver=resolver_for(PUBLIC, "10.0.0.1"))
    with pytest.raises(FetchError):
        await fetcher.get("https://keys.example/jwks")
    await fetcher.aclose()


@pytest.mark.parametrize("url", ["http://keys.example/jwks", "ftp://keys.example/jwks", "file:///etc/passwd",
                                 "https://user:pw@keys.example/jwks", "https://keys.example\\@10.0.0.1/",
                                 "https://keys.example/\x00", "https://keys.example/a b", "/relative", "https://[::1"])
async def test_ssrf_urls_other_than_plain_https_are_refused(url, no_connections):
    calls: list[str] = []
    fetcher = SafeFetcher(resolver=resolver_for(PUBLIC, calls=calls))
    with pytest.raises(FetchError):
        await fetcher.get(url)
    assert calls == []
    await fetcher.aclose()


async def test_http_is_refused_to_a_public_address_even_under_the_development_setting(no_connections):
    fetcher = SafeFetcher(allow_loopback=True, resolver=resolver_for(PUBLIC))
    with pytest.raises(FetchError):
        await fetcher.get("http://keys.example/jwks")
    await fetcher.aclose()


async def test_development_setting_allows_loopback_only_not_private_ranges(no_connections):
    fetcher = SafeFetcher(allow_loopback=True, resolver=resolver_for("192.168.0.7"))
    with pytest.raises(FetchError):
        await fetcher.get("https://keys.example/jwks")
    assert address_refusal(__import__("ipaddress").ip_address("127.0.0.1"), allow_loopback=True) is None
    await fetcher.aclose()


async def test_dns_rebinding_connects_to_the_checked_address_with_host_and_sni_set_to_the_name():
    seen: list[httpx.Request] = []
    answers = iter([[PUBLIC], ["127.0.0.1"]])  # a rebinding resolver: public first, then loopback

    async def rebinding(host: str, port: int) -> Sequence[str]:
        return next(answers)

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"keys": []})

    fetcher = SafeFetcher(resolver=rebinding, transport=httpx.MockTransport(upstream))
    answer = await fetcher.get("https://keys.example:8443/jwks?x=1")
    assert answer.json() == {"keys": []}
    (request,) = seen
    assert request.url.host == PUBLIC and request.url.port == 8443 and request.url.path == "/jwks"
    assert request.headers["host"] == "keys.example:8443"
    assert request.extensions["sni_hostname"] == "keys.example"  # SNI and certificate name checks use it
    await fetcher.aclose()


async def test_ipv6_public_address_is_bracketed_and_host_keeps_the_name():
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(204))
    fetcher = SafeFetcher(resolver=resolver_for("2606:4700::6810:84e5"), transport=transport)
    await fetcher.post_form("https://rp.example/logout", {"logout_token": "t"})
    assert seen[0].url.host == "2606:4700::6810:84e5" and seen[0].headers["host"] == "rp.example"
    assert seen[0].content == b"logout_token=t"
    assert seen[0].headers["content-type"] == "application/x-www-form-urlencoded"
    await fetcher.aclose()


# --- against loopback, under the development setting ------------------------------------------------


@contextlib.asynccontextmanager
async def loopback(handler: Handler) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A raw HTTP server on 127.0.0.1; yields its base URL and the request heads it received."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()


def answer(status: str, body: bytes = b"", *headers: str) -> Handler:
    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    return handle


async def test_loopback_is_refused_without_the_development_setting(no_connections):
    fetcher = SafeFetcher()
    for url in ("http://127.0.0.1:9/jwks", "https://127.0.0.1:9/jwks", "https://[::1]:9/jwks"):
        with pytest.raises(FetchError):
            await fetcher.get(url)
    await fetcher.aclose()


async def test_development_setting_fetches_from_loopback_and_ignores_proxy_variables(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: a proxied request fails
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with loopback(answer("200 OK", b'{"keys": []}', "Content-Type: application/json")) as (base, heads):
        fetcher = SafeFetcher(allow_loopback=True)
        got = await fetcher.get(base + "/jwks")
        assert got.json() == {"keys": []} and got.content_type == "application/json"
        assert heads[0].startswith(b"GET /jwks HTTP/1.1")
        await fetcher.aclose()


async def test_redirect_is_refused_and_its_target_never_requested():
    async with loopback(answer("200 OK", b"{}")) as (target, target_heads):
        async with loopback(answer("302 Found", b"", f"Location: {target}/jwks")) as (base, _):
            fetcher = SafeFetcher(allow_loopback=True)
            with pytest.raises(FetchError) as caught:
                await fetcher.get(base + "/jwks")
            assert "redirect" in caught.value.reason
            assert target_heads == []
            await fetcher.aclose()


async def test_slow_drip_is_cut_at_the_total_deadline():
    async def drip(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):  # each byte well inside any read timeout, the whole far beyond the deadline
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with loopback(drip) as (base, _):
        fetcher = SafeFetcher(allow_loopback=True)
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            await fetcher.get(base + "/jwks", deadline=0.6)
        assert time.monotonic() - started < 2.0
        assert caught.value.reason == "deadline exceeded"
        await fetcher.aclose()


async def test_huge_streamed_body_stops_at_the_byte_cap():
    sent = 0

    async def flood(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        while sent < 64 * 1024 * 1024:  # 64 MiB offered, no length announced
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)

    async with loopback(flood) as (base, _):
        fetcher = SafeFetcher(allow_loopback=True, max_bytes=100_000)
        with pytest.raises(FetchError) as caught:
            await fetcher.get(base + "/jwks")
        assert "cap" in caught.value.reason
        await asyncio.sleep(0.05)
        assert sent < 32 * 1024 * 1024  # the reader stopped long before the end (socket buffers hold a few MiB)
        await fetcher.aclose()


async def test_announced_length_over_the_cap_is_refused_before_reading():
    async with loopback(answer("200 OK", b"x" * 5000)) as (base, _):
        fetcher = SafeFetcher(allow_loopback=True, max_bytes=1000)
        with pytest.raises(FetchError) as caught:
            await fetcher.get(base + "/jwks")
        assert "5000 bytes" in caught.value.reason
        await fetcher.aclose()


async def test_failed_url_is_not_tried_again_within_the_negative_cache_time():
    async with loopback(answer("500 Internal Server Error")) as (base, heads):
        fetcher = SafeFetcher(allow_loopback=True, negative_ttl=60)
        for _ in range(3):
            with pytest.raises(FetchError):
                await fetcher.get(base + "/jwks")
        assert len(heads) == 1
        await fetcher.aclose()
