"""The client address behind trusted proxies, and the bounded password-hashing pool."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ostiary.server.hashing import HashingBusy, HashingPool
from ostiary.web.proxies import TrustedProxies

PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8", "192.0.2.1"])
RFC7239 = TrustedProxies(["10.0.0.0/8", "fd00::/8", "192.0.2.1"], header="forwarded")


def _headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


def test_forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy() -> None:
    # the attack: a client names its own address to escape the per-address throttle
    assert PROXIES.client_address("203.0.113.9", _headers(x_forwarded_for="198.51.100.1")) == "203.0.113.9"
    assert PROXIES.client_address("203.0.113.9", _headers(forwarded="for=198.51.100.1")) == "203.0.113.9"


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    assert PROXIES.client_address("10.1.2.3", _headers(x_forwarded_for="198.51.100.1")) == "198.51.100.1"
    assert PROXIES.client_address("10.1.2.3", []) == "10.1.2.3"


def test_x_forwarded_for_is_read_from_the_right_skipping_trusted_hops() -> None:
    # the client prepended a forged entry; the nearest untrusted hop is the real client
    header = "6.6.6.6, 198.51.100.1, 10.9.9.9"
    assert PROXIES.client_address("10.1.2.3", _headers(x_forwarded_for=header)) == "198.51.100.1"
    assert PROXIES.client_address("10.1.2.3", _headers(x_forwarded_for="10.2.2.2, 10.3.3.3")) == "10.2.2.2"


def test_rfc7239_forwarded_header_with_ports_and_ipv6() -> None:
    header = 'for=198.51.100.1:4711;proto=https, for="[2001:db8::17]:80";by=10.0.0.1'
    assert RFC7239.client_address("192.0.2.1", _headers(forwarded=header)) == "2001:db8::17"
    assert RFC7239.client_address("fd00::1", _headers(forwarded="for=198.51.100.1:4711")) == "198.51.100.1"


def test_only_the_configured_header_is_read_the_other_is_the_clients_own() -> None:
    # the attack: a proxy appending to X-Forwarded-For passes the client's `Forwarded` through as sent
    both = _headers(forwarded="for=6.6.6.6", x_forwarded_for="198.51.100.1")
    assert PROXIES.client_address("10.1.2.3", both) == "198.51.100.1"
    assert RFC7239.client_address("10.1.2.3", _headers(forwarded="for=198.51.100.1", x_forwarded_for="6.6.6.6")
                                  ) == "198.51.100.1"


def test_a_malformed_hop_stops_the_walk_at_the_last_trusted_address() -> None:
    assert PROXIES.client_address("10.1.2.3", _headers(x_forwarded_for="198.51.100.1, unknown")) == "10.1.2.3"
    assert RFC7239.client_address("10.1.2.3", _headers(forwarded="for=_hidden")) == "10.1.2.3"


async def test_hashing_pool_runs_at_most_concurrency_and_refuses_past_the_queue() -> None:
    pool = HashingPool(concurrency=1, queue=1)
    release = threading.Event()
    running = asyncio.create_task(pool.run(release.wait, 5))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(pool.run(lambda: "second"))
    await asyncio.sleep(0.05)
    with pytest.raises(HashingBusy):  # one running, one waiting: the third is answered at once
        await pool.run(lambda: "third")
    release.set()
    assert await running is True and await queued == "second"
    assert await pool.run(lambda: "later") == "later"


def test_hashing_pool_defaults_to_the_core_count() -> None:
    import os

    assert HashingPool().concurrency == (os.cpu_count() or 1)


def test_trusted_proxies_setting_from_the_environment_and_refused_when_malformed() -> None:
    from ostiary.config import ConfigError, load_settings

    settings = load_settings(env={"OSTIARY_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7 fd00::/8"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7", "fd00::/8")
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(env={"OSTIARY_TRUSTED_PROXIES": "10.0.0.0/33"})
    with pytest.raises(ConfigError, match="throttle"):
        load_settings(env={"OSTIARY_THROTTLE__MAX_DELAY": "0"})
