"""Client-supplied URLs go through the safe fetcher: `jwks_uri` no longer reaches loopback ports, and
its error does not tell an open port from a closed one (it answered like a port scanner before)."""

from __future__ import annotations

import socket

from ostiary.config import OutboundSettings

from ._helpers import (
    JwksServer,
    app_with,
    assert_error,
    assertion,
    assertion_form,
    new_ec_key,
    public_jwks,
    store_client,
)


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
                # stored as before registration refused such URLs: the fetcher still refuses them
                client = await store_client(running, token_endpoint_auth_method="private_key_jwt", jwks_uri=uri,
                                            scope="api:read", grant_types=("client_credentials",))
                r = await running.http.post("/token", data=assertion_form(assertion(key, client.client_id)))
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


_FETCHED = ("jwks_uri", "backchannel_logout_uri", "logo_uri")


async def _register_url(running, name: str, url: str):
    metadata = {"token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
                "scope": "api:read", name: url}
    if name != "jwks_uri":
        metadata["jwks"] = public_jwks(new_ec_key())
    return await running.http.post("/register", json=metadata,
                                   headers={"Authorization": "Bearer initial-token-for-tests"})


async def test_ssrf_registration_refuses_urls_the_fetcher_would_refuse_outside_development(tmp_path):
    """Attack: registering http://127.0.0.1:<port>/, http://localhost/ or a private literal as jwks_uri,
    back-channel logout or logo URI, to be fetched later; the registration itself now says no."""
    async with app_with(f"sqlite:///{tmp_path / 'r.db'}", outbound=OutboundSettings()) as running:
        for name in _FETCHED:
            for url in (f"http://127.0.0.1:{_closed_port()}/x", "http://localhost/x", "http://[::1]/x",
                        "http://app.example/x", "https://10.0.0.1/x", "https://169.254.169.254/latest",
                        "https://localhost/x", "https://api.localhost./x",
                        "https://[::ffff:127.0.0.1]/x"):
                body = assert_error(await _register_url(running, name, url), 400, "invalid_client_metadata")
                assert name in body["error_description"], body
            ok = await _register_url(running, name, "https://app.example/x")
            assert ok.status_code == 201, ok.text


async def test_ssrf_registration_accepts_loopback_http_only_under_the_development_setting(tmp_path):
    async with app_with(f"sqlite:///{tmp_path / 'l.db'}", outbound=OutboundSettings(allow_loopback=True)) as running:
        for name in _FETCHED:
            for url in ("http://127.0.0.1:9/x", "http://localhost:9/x", "http://[::1]/x"):
                r = await _register_url(running, name, url)
                assert r.status_code == 201, r.text
            assert_error(await _register_url(running, name, "http://app.example/x"), 400, "invalid_client_metadata")
