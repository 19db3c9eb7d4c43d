"""panva's openid-client 6.x (Node): discovery, client credentials, introspection, revocation; acr_values with
a second factor (through Chromium)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ostiary.server.mfa import totp
from tests.browser._helpers import callback_server, launch, log_in, needs_browser, new_page, wait_for_callback
from tests.e2e._server import ServerProcess, jwks_verify
from tests.interop.conftest import Clients, RegisteredClient, create_with_cli, needs_node, register, run_node

pytestmark = [pytest.mark.interop, needs_node]


def openid_client(server: ServerProcess, client: RegisteredClient, method: str, **extra: Any) -> dict[str, Any]:
    payload = {"issuer": server.issuer, "clientId": client.client_id, "clientSecret": client.client_secret,
               "privateJwk": client.private_jwk, "method": method, "scope": "api:read", **extra}
    return run_node("cc.mjs", payload)


def check(server: ServerProcess, out: dict[str, Any]) -> None:
    assert out["issuer"] == server.issuer
    token = out["token"]
    assert token["token_type"].lower() == "bearer" and token["scope"] == "api:read"
    with server.http() as http:
        jwks_verify(token["access_token"], http.get("/jwks").json(), issuer=server.issuer, audience=server.issuer)


def test_discovery_default_auth_with_a_client_secret(es256_server: ServerProcess, clients: Clients) -> None:
    # `discovery(issuer, id, secret)` picks client_secret_post for a client that gives a secret.
    check(es256_server, openid_client(es256_server, clients.post, "default"))


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "client_secret_jwt",
                                    "private_key_jwt"])
def test_client_credentials(es256_server: ServerProcess, clients: Clients, method: str) -> None:
    client = {"client_secret_basic": clients.basic, "client_secret_post": clients.post,
              "client_secret_jwt": clients.secret_jwt, "private_key_jwt": clients.private_key_jwt}[method]
    check(es256_server, openid_client(es256_server, client, method))


@pytest.mark.parametrize("method", ["client_secret_basic", "private_key_jwt"])
def test_introspection_and_revocation(es256_server: ServerProcess, clients: Clients, method: str) -> None:
    client = clients.basic if method == "client_secret_basic" else clients.private_key_jwt
    out = openid_client(es256_server, client, method, introspect=True, revoke=True)
    info = out["introspection"]
    assert info["active"] is True
    assert info["client_id"] == client.client_id and info["token_type"] == "Bearer"
    assert info["iss"] == es256_server.issuer
    assert out["revoked"] is True
    assert out["after"] == {"active": False}


def test_basic_credentials_are_form_urlencoded(es256_server: ServerProcess) -> None:
    # RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded before Basic encoding;
    # openid-client sends a space as '+', and escapes - _ . ! ~ * ' ( ).
    created = create_with_cli(es256_server, "--client-id", "reporting job (nightly)", "--scope", "api:read")
    client = RegisteredClient(created["client_id"], created["client_secret"])
    check(es256_server, openid_client(es256_server, client, "client_secret_basic"))


def test_rfc6749_5_2_invalid_client_with_basic_is_read_from_the_challenge(es256_server: ServerProcess,
                                                                          clients: Clients) -> None:
    """Issue 9 item 1: HTTP Basic with a wrong secret -> 401 whose challenge names the error."""
    wrong = RegisteredClient(clients.basic.client_id, "wrong-secret")
    out = run_node("cc.mjs", {"issuer": es256_server.issuer, "clientId": wrong.client_id,
                              "clientSecret": wrong.client_secret, "method": "client_secret_basic"},
                   expect_failure=True)
    assert out["code"] == "OAUTH_WWW_AUTHENTICATE_CHALLENGE", out
    (challenge,) = out["cause"]
    assert challenge["scheme"] == "basic" and challenge["parameters"]["realm"] == "ostiary"
    assert challenge["parameters"]["error"] == "invalid_client", challenge
    assert challenge["parameters"]["error_description"]


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_jwt"])
def test_rfc6749_5_2_invalid_client_without_basic_keeps_its_code(es256_server: ServerProcess, clients: Clients,
                                                                 method: str) -> None:
    """Issue 9 item 1: any other method -> 400 invalid_client with no challenge (openid-client reported
    only "server responded with a challenge" when a Basic challenge came back)."""
    client = clients.post if method == "client_secret_post" else clients.secret_jwt
    out = run_node("cc.mjs", {"issuer": es256_server.issuer, "clientId": client.client_id,
                              "clientSecret": "wrong-secret-" + "x" * 40, "method": method},
                   expect_failure=True)
    assert out["status"] == 400 and out["error"] == "invalid_client", out


@needs_browser
def test_acr_values_multi_factor_sign_in_states_acr_and_amr(es256_server: ServerProcess) -> None:
    """Issue 11: openid-client asks for `acr_values=urn:ostiary:acr:mfa`; the user signs in with password and
    an authenticator code; the ID token openid-client validated says acr mfa and amr pwd, otp, mfa (RFC 8176)."""
    username, password = "interop-mfa", "interop mfa password"
    es256_server.cli("user", "create", username, "--password-stdin", "--database-url", es256_server.database_url,
                     input=password + "\n")
    with callback_server() as callback, launch() as browser:
        registered = register(es256_server, grant_types=["authorization_code"], scope="openid",
                              redirect_uris=[callback.redirect_uri], client_name="interop mfa")
        page = new_page(browser)
        try:
            page.goto(f"{es256_server.base_url}/signin?return_to=/account")
            log_in(page, username, password)
            page.get_by_role("button", name="Set up authenticator app").click()
            secret = page.inner_text("#totp-secret").replace(" ", "")
            activated = totp.step_at(time.time())
            page.fill("#totp-code", totp.code_at(secret, activated))
            page.click("button.primary")
            page.wait_for_selector("ul.recovery-codes")
            page.context.clear_cookies()  # a new sign-in: password and code
            base = {"issuer": es256_server.issuer, "clientId": registered.client_id,
                    "clientSecret": registered.client_secret, "method": "client_secret_basic",
                    "redirectUri": callback.redirect_uri, "scope": "openid"}
            started = run_node("oidc_flow.mjs", {**base, "step": "start", "acrValues": "urn:ostiary:acr:mfa"})
            assert "acr_values=urn%3Aostiary%3Aacr%3Amfa" in started["url"]
            page.goto(started["url"])
            log_in(page, username, password)
            page.fill("#factor-totp-code", totp.code_at(secret, activated + 1))
            page.click("#factor-totp-code ~ button")
            page.click("button[name=decision][value=approve]")
            out = run_node("oidc_flow.mjs", {**base, **started, "step": "finish",
                                             "callbackUrl": wait_for_callback(page, callback)})
        finally:
            page.context.close()
    claims = out["idTokenClaims"]
    assert claims["acr"] == "urn:ostiary:acr:mfa"
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    with es256_server.http() as http:
        assert "urn:ostiary:acr:mfa" in http.get("/.well-known/openid-configuration").json()["acr_values_supported"]
