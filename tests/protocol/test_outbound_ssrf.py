"""Client-supplied URLs go through the safe fetcher: `jwks_uri` no longer reaches loopback ports, and
its error does not tell an open port from a closed one (it answered like a port scanner before)."""

from __future__ import annotations

import socket

from ostiary.config import OutboundSettings

from ._helpers import JwksServer, app_with, assert_error, assertion, assertion_form, new_ec_key, public_jwks


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_ssrf_jwks_uri_on_loopback_is_refused_in_production_with_one_generic_error(tmp_path):
    key = new_ec_key()
    async with app_with(f"sqlite:///{tmp_path / 'o.db'}", outbound=OutboundSettings()) as running:
        with JwksServer.serving(public_jwks(key)) as server:
            errors = []
            for uri in (server.url, f"http://127.0.0.1:{_closed_port()}/jwks", "https://10.0.0.1/jwks"):
                cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks_uri=uri,
                                                  scope="api:read")
                r = await running.http.post("/token", data=assertion_form(assertion(key, cid)))
                errors.append(assert_error(r, 400, "invalid_client").get("error_description"))
            assert server.hits == 0
        assert len(set(errors)) == 1, errors  # open port, closed port, private address: the same answer


async def test_jwks_uri_on_loopback_works_under_the_development_setting(tmp_path):
    key = new_ec_key()
    async with app_with(f"sqlite:///{tmp_path / 'd.db'}", outbound=OutboundSettings(allow_loopback=True)) as running:
        with JwksServer.serving(public_jwks(key)) as server:
            cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks_uri=server.url,
                                              scope="api:read")
            r = await running.http.post("/token", data=assertion_form(assertion(key, cid)))
            assert r.status_code == 200, r.text
            assert server.hits == 1
