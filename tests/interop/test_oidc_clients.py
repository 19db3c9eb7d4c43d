"""OpenID Connect clients we did not write, through a real login in headless Chromium.

panva's openid-client (Node) and Authlib (Python) each run the authorization code flow with
PKCE S256 against `ostiary serve`: the client builds the authorization URL, Chromium logs in and
consents, the client redeems the code from the callback URL (checking state, nonce, `iss` and
the ID token), then calls UserInfo and refreshes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser._helpers import (
    CallbackServer,
    callback_server,
    launch,
    needs_browser,
    new_page,
    sign_in_and_consent,
    wait_for_callback,
)
from tests.e2e._server import ServerProcess
from tests.interop.conftest import RegisteredClient, needs_node, register, run_node

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.interop, needs_browser]

USERNAME, PASSWORD = "interop-user", "interop password 1"
SCOPE = "openid profile email offline_access"


@dataclass(frozen=True)
class Setup:
    server: ServerProcess
    callback: CallbackServer
    browser: Browser
    sub: str

    def client(self, method: str) -> RegisteredClient:
        return register(self.server, grant_types=["authorization_code", "refresh_token"], scope=SCOPE,
                        redirect_uris=[self.callback.redirect_uri], token_endpoint_auth_method=method,
                        post_logout_redirect_uris=[self.callback.post_logout_uri], client_name=f"interop {method}")


@contextlib.contextmanager
def browser_page(setup: Setup) -> Iterator[Page]:
    page = new_page(setup.browser)
    try:
        yield page
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def setup(es256_server: ServerProcess) -> Iterator[Setup]:
    out = es256_server.cli("user", "create", USERNAME, "--password-stdin", "--name", "Ada Interop",
                           "--email", "ada@example.org", "--email-verified", "--json",
                           "--database-url", es256_server.database_url, input=PASSWORD + "\n")
    sub = json.loads(out.stdout)["sub"]
    with callback_server() as callback, launch() as browser:
        yield Setup(es256_server, callback, browser, sub)


# -- panva's openid-client ------------------------------------------------------------------------


@needs_node
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "none"])
def test_openid_client_code_flow_pkce(setup: Setup, method: str) -> None:
    registered = setup.client(method)
    base = {"issuer": setup.server.issuer, "clientId": registered.client_id,
            "clientSecret": registered.client_secret, "method": method, "redirectUri": setup.callback.redirect_uri}
    started = run_node("oidc_flow.mjs", {**base, "step": "start"})
    assert "code_challenge_method=S256" in started["url"]
    with browser_page(setup) as page:
        callback_url = sign_in_and_consent(page, started["url"], USERNAME, PASSWORD, setup.callback)
        out = run_node("oidc_flow.mjs", {**base, **started, "step": "finish", "callbackUrl": callback_url,
                                         "postLogoutRedirectUri": setup.callback.post_logout_uri})
        # Silent renewal (prompt=none) of this self-registered, consented app: a code, no page.
        silent = run_node("oidc_flow.mjs", {**base, "step": "start", "prompt": "none"})
        page.goto(silent["url"])
        renewed = run_node("oidc_flow.mjs", {**base, **silent, "step": "finish",
                                             "callbackUrl": wait_for_callback(page, setup.callback)})
        assert renewed["idTokenClaims"]["sub"] == setup.sub
        assert renewed["idTokenClaims"]["sid"] == out["idTokenClaims"]["sid"]
        # RP-Initiated Logout with the URL openid-client built (id_token_hint, post_logout_redirect_uri, state).
        page.goto(out["endSessionUrl"])
        page.click("button[name=decision][value=logout]")
        page.wait_for_url(setup.callback.post_logout_uri + "?*")
        assert page.url == setup.callback.post_logout_uri + "?state=rp-logout"

    claims = out["idTokenClaims"]
    assert claims["iss"] == setup.server.issuer and claims["sub"] == setup.sub
    assert claims["aud"] in (registered.client_id, [registered.client_id])
    assert claims["nonce"] == started["nonce"]
    assert out["userinfo"]["sub"] == setup.sub
    assert out["userinfo"]["email"] == "ada@example.org" and out["userinfo"]["name"] == "Ada Interop"
    assert out["token"]["token_type"].lower() == "bearer" and out["token"]["has_refresh_token"]
    assert out["refreshed"]["new_access_token"] and out["refreshed"]["rotated"]
    assert out["reuse"] == {"accepted": False, "error": "invalid_grant"}
    if out["refreshedClaims"] is not None:  # OIDC Core §12.2: same iss, sub, aud as the first ID token
        for name in ("iss", "sub", "aud"):
            assert out["refreshedClaims"][name] == claims[name]


# -- Authlib ------------------------------------------------------------------------------------


def _verify_id_token(setup: Setup, id_token: str, client_id: str, nonce: str | None,
                     access_token: str) -> dict[str, Any]:
    """The signature with joserfc against /jwks; the claims with Authlib's OIDC Core rules
    (iss, aud, azp, exp, iat, nonce, at_hash)."""
    from authlib.oidc.core import CodeIDToken
    from joserfc import jwt
    from joserfc.jwk import KeySet

    with setup.server.http() as http:
        jwks = KeySet.import_key_set(http.get("/jwks").json())
    token = jwt.decode(id_token, jwks, algorithms=["ES256", "RS256", "PS256", "EdDSA"])
    assert token.header.get("typ", "JWT").upper() == "JWT", token.header
    claims = CodeIDToken(token.claims, token.header,
                         options={"iss": {"essential": True, "value": setup.server.issuer}},
                         params={"nonce": nonce, "client_id": client_id, "access_token": access_token})
    claims.validate(leeway=5)
    return dict(claims)


@pytest.mark.parametrize("method", ["client_secret_basic", "none"])
def test_authlib_code_flow_pkce(setup: Setup, method: str) -> None:
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session

    registered = setup.client(method)
    with setup.server.http() as http:
        meta = http.get("/.well-known/openid-configuration").json()
    oauth = OAuth2Session(registered.client_id, registered.client_secret, scope=SCOPE,
                          redirect_uri=setup.callback.redirect_uri, code_challenge_method="S256",
                          token_endpoint_auth_method=method)
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    with browser_page(setup) as page:
        callback_url = sign_in_and_consent(page, url, USERNAME, PASSWORD, setup.callback)
    assert f"iss={setup.server.issuer}".replace(":", "%3A").replace("/", "%2F") in callback_url  # RFC 9207

    token = oauth.fetch_token(meta["token_endpoint"], authorization_response=callback_url, state=state,
                              code_verifier=verifier, timeout=10)
    claims = _verify_id_token(setup, token["id_token"], registered.client_id, nonce, token["access_token"])
    assert claims["sub"] == setup.sub

    info = oauth.get(meta["userinfo_endpoint"], timeout=10)
    assert info.status_code == 200 and info.json()["sub"] == setup.sub, info.text
    assert info.json()["email_verified"] is True

    refreshed = oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"], timeout=10)
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]  # rotated
    if "id_token" in refreshed:
        # OIDC Core §12.2: same iss, sub and aud; no nonce is expected on a refreshed ID token.
        again = _verify_id_token(setup, refreshed["id_token"], registered.client_id, None, refreshed["access_token"])
        assert again["sub"] == claims["sub"] and again["aud"] == claims["aud"]
    oauth.close()
