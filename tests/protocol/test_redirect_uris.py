"""Redirect URIs at registration and at /authorize, parsed as browsers parse them (RFC 8252 §7, RFC 9700 §4.1.3)."""

from __future__ import annotations

import logging

import orjson
import pytest
from click.testing import CliRunner

from ostiary.cli import main

from ._helpers import assert_error, store_client
from ._oidc_flow import REDIRECT, browser, is_page, make_rp, make_user, pkce, run_flow

INITIAL = {"Authorization": "Bearer initial-token-for-tests"}
ATTACK = "http://localhost:9649\\@127.0.0.1/cb"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: request validation, not storage."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


def _request(client_id: str, redirect_uri: str, **extra: str) -> dict[str, str]:
    _, challenge = pkce()
    return {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": "openid",
            "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", **extra}


@pytest.mark.parametrize("uri", [ATTACK, "https://rp.example@evil.example/cb", "https://rp.example/cb#x",
                                 "https://rp.example/c\u0001b", "https://rp.example:99999/cb", "https://RP.example/cb",
                                 "http://rp.example/cb", "myapp:/cb", "http://[::1"])
async def test_rfc7591_3_2_2_redirect_uri_browsers_read_differently_is_invalid_redirect_uri(running, uri):
    r = await running.http.post("/register", json={"redirect_uris": [uri]}, headers=INITIAL)
    body = assert_error(r, 400, "invalid_redirect_uri")
    assert "redirect URI" in body["error_description"]


@pytest.mark.parametrize("uri", ["https://rp.example/cb?tenant=7", "http://127.0.0.1/cb", "http://[::1]:8080/cb",
                                 "http://localhost:9000/cb", "com.example.app:/oauth2redirect"])
async def test_rfc8252_7_https_loopback_and_private_use_redirect_uris_are_registered(running, uri):
    r = await running.http.post("/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"},
                                headers=INITIAL)
    assert r.status_code == 201, r.text
    assert r.json()["redirect_uris"] == [uri]


def test_cli_client_create_refuses_a_backslash_redirect_uri(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(main, ["client", "create", "--grant-type", "authorization_code",
                                       "--redirect-uri", ATTACK, "--database-url", db])
    assert result.exit_code == 1 and "invalid_redirect_uri" in result.output and "backslash" in result.output


async def test_rfc9700_4_1_3_backslash_redirect_uri_never_gets_a_code_by_form_post(running):
    # The known attack: urlsplit saw host 127.0.0.1, Chromium posted the code to localhost:9649.
    cid, _ = await make_rp(running, token_endpoint_auth_method="none", redirect_uris=["http://127.0.0.1/cb"])
    r = await running.http.get("/authorize", params=_request(cid, ATTACK, response_mode="form_post"))
    assert is_page(r) and "<form" not in r.text and "9649" not in r.headers.get("content-security-policy", "")


async def test_rfc6749_4_1_2_1_malformed_redirect_uri_is_an_error_page_not_a_500(running):
    cid, _ = await make_rp(running)
    for uri in ("http://[::1", "https://rp.example:99999/cb", "https://rp.example/cb\u0000"):
        assert is_page(await running.http.get("/authorize", params=_request(cid, uri))), uri


async def test_csp3_form_post_page_may_post_only_to_the_redirect_uri(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, response_mode="form_post")
    csp = flow.response.headers["content-security-policy"]
    assert f"form-action {REDIRECT}" in [d.strip() for d in csp.split(";")]


async def test_stored_redirect_uri_the_rules_now_refuse_stops_matching_with_an_audit_event(running, caplog):
    legacy = "https://RP.example/cb"  # stored before these rules: a browser goes to rp.example
    client = await store_client(running, grant_types=("authorization_code",), response_types=("code",),
                                redirect_uris=(legacy,), token_endpoint_auth_method="none")
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    assert is_page(await running.http.get("/authorize", params=_request(client.client_id, legacy)))
    params = _request(client.client_id, legacy)
    del params["redirect_uri"], params["scope"]  # the single registered URI would be the default
    assert is_page(await running.http.get("/authorize", params=params))
    events = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "ostiary.audit"]
    refused = [e for e in events if e["event"] == "redirect_uri_refused" and e["client_id"] == client.client_id]
    assert len(refused) == 2 and all("no longer allowed" in e["reason"] for e in refused)


async def test_stored_post_logout_uri_the_rules_now_refuse_stops_matching(running):
    legacy = "https://RP.example/bye"
    client = await store_client(running, grant_types=("authorization_code",), response_types=("code",),
                                redirect_uris=("https://rp.example/cb",), post_logout_redirect_uris=(legacy,),
                                token_endpoint_auth_method="none")
    r = await running.http.get("/logout", params={"client_id": client.client_id, "post_logout_redirect_uri": legacy})
    assert is_page(r)
