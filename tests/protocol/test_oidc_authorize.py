"""The authorization endpoint: RFC 6749 §4.1.1-4.1.2.1, OIDC Core §3.1.2, RFC 7636, RFC 8252 §7.3, RFC 9207."""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

import httpx
import pytest

from ostiary.config import OidcSettings

from ._oidc_flow import (
    ISSUER,
    REDIRECT,
    app_for,
    browser,
    exchange,
    form_fields,
    is_page,
    make_rp,
    make_user,
    pkce,
    query_of,
    run_flow,
)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: this module checks request validation and metadata, not storage (the other modules run
    on PostgreSQL too)."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


def _request(client_id: str, **extra: str) -> dict[str, str]:
    _, challenge = pkce()
    params = {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
              "state": "st-1", "code_challenge": challenge, "code_challenge_method": "S256"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def assert_redirect_error(r: httpx.Response, error: str, *, state: str | None = "st-1",
                          redirect_uri: str = REDIRECT) -> dict[str, str]:
    """An error sent back to the client (RFC 6749 §4.1.2.1) with `state` and `iss` (RFC 9207 §2)."""
    assert r.status_code in (302, 303), r.text
    location = r.headers["location"]
    assert location.startswith(redirect_uri + ("&" if "?" in redirect_uri else "?")), location
    q = query_of(location)
    assert q["error"] == error, q
    assert q["iss"] == ISSUER
    assert q.get("state") == state
    return q


async def test_rfc6749_4_1_1_authorization_request_by_get_gives_code(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, state="abc")
        assert flow.response.status_code == 303
        assert flow.response.headers["location"].startswith(REDIRECT + "?")
        assert flow.params["state"] == "abc"
        assert flow.params["iss"] == ISSUER
        assert (await exchange(b, flow)).status_code == 200


async def test_oidc_core_3_1_2_1_authorization_request_by_post_gives_code(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, method="POST", state="post-state")
        assert flow.params["state"] == "post-state" and flow.params["iss"] == ISSUER
        assert (await exchange(b, flow)).status_code == 200


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token", "none"])
async def test_rfc6749_4_1_2_1_other_response_types_are_unsupported_response_type(running, response_type):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, response_type=response_type))
    assert_redirect_error(r, "unsupported_response_type")


async def test_rfc6749_4_1_2_1_missing_response_type_is_invalid_request(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, response_type=None))
    assert_redirect_error(r, "invalid_request")


async def test_rfc6749_4_1_2_1_unknown_client_is_error_page_never_redirect(running):
    r = await running.http.get("/authorize", params=_request("no-such-client"))
    assert is_page(r)
    r = await running.http.post("/authorize", data=_request("no-such-client"))
    assert is_page(r)


async def test_rfc6749_4_1_2_1_missing_client_id_is_error_page(running):
    params = _request("x")
    del params["client_id"]
    assert is_page(await running.http.get("/authorize", params=params))


@pytest.mark.parametrize("uri", [
    "https://evil.example/cb", "https://rp.example/cb/extra", "https://rp.example/cb?x=1", "https://rp.example/CB",
    "https://rp.example:8443/cb", "http://rp.example/cb", "https://rp.example/cb#frag", "not a uri",
])
async def test_rfc6749_4_1_2_1_unregistered_redirect_uri_is_error_page_never_redirect(running, uri):
    cid, _ = await make_rp(running)
    # Even with another error in the request, nothing may go to an unregistered URI.
    for extra in ({}, {"response_type": "token"}, {"scope": "not-allowed"}):
        r = await running.http.get("/authorize", params=_request(cid, redirect_uri=uri, **extra))
        assert is_page(r), (uri, extra, r.status_code, r.headers.get("location"))
        assert "evil.example" not in r.headers.get("location", "")


async def test_oidc_core_3_1_2_1_redirect_uri_is_required_with_openid(running):
    cid, _ = await make_rp(running)
    assert is_page(await running.http.get("/authorize", params=_request(cid, redirect_uri=None)))


async def test_rfc6749_3_1_2_3_redirect_uri_may_be_omitted_without_openid_when_one_is_registered(running):
    cid, _ = await make_rp(running, scope="api:read")
    r = await running.http.get("/authorize", params=_request(cid, redirect_uri=None, scope="api:read",
                                                             response_type="token"))
    assert_redirect_error(r, "unsupported_response_type")


async def test_rfc6749_3_1_2_repeated_client_id_or_redirect_uri_is_error_page(running):
    cid, _ = await make_rp(running)
    base = list(_request(cid).items())
    r = await running.http.get("/authorize", params=[*base, ("redirect_uri", "https://evil.example/cb")])
    assert is_page(r)
    r = await running.http.get("/authorize", params=[*base, ("client_id", cid)])
    assert is_page(r)


async def test_rfc6749_3_1_repeated_parameter_is_invalid_request(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=[*_request(cid).items(), ("scope", "openid profile")])
    assert_redirect_error(r, "invalid_request")


async def test_rfc6749_3_1_empty_parameter_is_treated_as_absent(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, response_type=""))
    assert_redirect_error(r, "invalid_request")


@pytest.mark.parametrize(("name", "error"), [
    ("request", "request_not_supported"), ("request_uri", "request_uri_not_supported"),
    ("registration", "registration_not_supported"),
])
async def test_oidc_core_6_request_objects_are_not_supported(running, name, error):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, **{name: "eyJhbGciOiJub25lIn0.e30."}))
    assert_redirect_error(r, error)


async def test_rfc6749_4_1_2_1_scope_not_allowed_is_invalid_scope(running):
    cid, _ = await make_rp(running, scope="api:read")
    r = await running.http.get("/authorize", params=_request(cid, scope="openid api:write"))
    assert_redirect_error(r, "invalid_scope")


async def test_oidc_core_3_1_2_1_unknown_prompt_is_invalid_request(running):
    cid, _ = await make_rp(running)
    assert_redirect_error(await running.http.get("/authorize", params=_request(cid, prompt="bogus")),
                          "invalid_request")
    assert_redirect_error(await running.http.get("/authorize", params=_request(cid, prompt="none login")),
                          "invalid_request")


async def test_rfc6749_4_1_2_1_error_without_state_has_no_state(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, state=None, response_type="token"))
    q = assert_redirect_error(r, "unsupported_response_type", state=None)
    assert "state" not in q


async def test_rfc6749_3_1_2_redirect_uri_query_is_kept_in_the_response(running):
    uri = "https://rp.example/cb?tenant=7"
    cid, _ = await make_rp(running, redirect_uris=[uri])
    r = await running.http.get("/authorize", params=_request(cid, redirect_uri=uri, response_type="token"))
    q = assert_redirect_error(r, "unsupported_response_type", redirect_uri=uri)
    assert q["tenant"] == "7"


async def test_oidc_core_3_1_2_1_unknown_parameters_are_ignored(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, foo="bar", ui_locales="fr"))
    assert r.status_code == 303 and r.headers["location"].startswith("/interaction/")


# PKCE (RFC 7636, OAuth 2.1 §4.1.1, RFC 9700 §2.1.1)

async def test_rfc7636_4_4_1_public_client_without_code_challenge_is_invalid_request(running):
    cid, _ = await make_rp(running, token_endpoint_auth_method="none")
    r = await running.http.get("/authorize", params=_request(cid, code_challenge=None, code_challenge_method=None))
    assert_redirect_error(r, "invalid_request")


async def test_rfc9700_2_1_1_confidential_client_without_code_challenge_is_refused_by_default(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, code_challenge=None, code_challenge_method=None))
    assert_redirect_error(r, "invalid_request")


async def test_rfc7636_4_3_plain_code_challenge_method_is_refused(running):
    cid, _ = await make_rp(running)
    verifier, _ = pkce()
    r = await running.http.get("/authorize", params=_request(cid, code_challenge=verifier,
                                                             code_challenge_method="plain"))
    assert_redirect_error(r, "invalid_request")


async def test_rfc7636_4_3_missing_code_challenge_method_is_refused(running):
    # Absent means plain (RFC 7636 §4.3), which OAuth 2.1 refuses.
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, code_challenge_method=None))
    assert_redirect_error(r, "invalid_request")


@pytest.mark.parametrize("challenge", ["short", "a" * 129, "A" * 42 + "!"])
async def test_rfc7636_4_2_malformed_code_challenge_is_refused(running, challenge):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, code_challenge=challenge))
    assert_redirect_error(r, "invalid_request")


async def test_rfc7636_code_challenge_method_without_challenge_is_refused(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, code_challenge=None))
    assert_redirect_error(r, "invalid_request")


async def test_rfc7636_4_4_1_pkce_optional_for_confidential_when_configured_but_not_for_public(database_url):
    async with app_for(database_url, oidc=OidcSettings(pkce_required=False)) as r:
        user = await make_user(r)
        cid, secret = await make_rp(r)
        async with browser(r) as b:
            flow = await run_flow(b, cid, secret, user, use_pkce=False)
            assert (await exchange(b, flow)).status_code == 200
        pub, _ = await make_rp(r, token_endpoint_auth_method="none")
        resp = await r.http.get("/authorize", params=_request(pub, code_challenge=None, code_challenge_method=None))
        assert_redirect_error(resp, "invalid_request")


# response_mode (OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode §2)

async def test_oauth_form_post_2_response_is_an_auto_submitting_form(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, response_mode="form_post", state="fp")
        r = flow.response
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert f'action="{REDIRECT}"' in r.text and 'method="post"' in r.text
        fields = form_fields(r.text)
        assert set(fields) >= {"code", "state", "iss"}
        assert fields["state"] == "fp" and html.unescape(fields["iss"]) == ISSUER
        csp = r.headers["content-security-policy"]
        nonce = re.search(r"script-src 'nonce-([^']+)'", csp)
        assert nonce and f'nonce="{nonce.group(1)}"' in r.text
        assert "frame-ancestors 'none'" in csp
        assert r.headers["cache-control"] == "no-store"
        assert (await exchange(b, flow)).status_code == 200


async def test_oauth_form_post_2_errors_are_posted_too(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, response_mode="form_post", response_type="token"))
    assert r.status_code == 200 and "location" not in r.headers
    fields = {k: html.unescape(v) for k, v in form_fields(r.text).items()}
    assert fields["error"] == "unsupported_response_type"
    assert fields["iss"] == ISSUER and fields["state"] == "st-1" and "code" not in fields


async def test_oauth_multiple_response_types_2_1_unknown_response_mode_is_invalid_request(running):
    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params=_request(cid, response_mode="fragment"))
    assert_redirect_error(r, "invalid_request")


# RFC 8252 §7.3: loopback redirect URIs match on any port, for IP literals only

async def test_rfc8252_7_3_loopback_ip_redirect_accepts_any_port(running):
    user = await make_user(running)
    cid, _ = await make_rp(running, token_endpoint_auth_method="none",
                           redirect_uris=["http://127.0.0.1/cb", "http://[::1]/cb"])
    for uri in ("http://127.0.0.1:51234/cb", "http://[::1]:4000/cb", "http://127.0.0.1/cb"):
        r = await running.http.get("/authorize", params=_request(cid, redirect_uri=uri))
        assert r.status_code == 303 and r.headers["location"].startswith("/interaction/"), uri
        async with browser(running) as b:
            flow = await run_flow(b, cid, None, user, redirect_uri=uri)
            assert flow.response.headers["location"].startswith(uri + "?")
            form = flow.token_form(redirect_uri=uri, client_id=cid)
            assert (await b.post("/token", data=form)).status_code == 200


@pytest.mark.parametrize("uri", [
    "http://localhost:4000/cb",  # not an IP literal (RFC 8252 §8.3)
    "http://127.0.0.1:4000/other",  # the path must match
    "http://127.0.0.2:4000/cb",
    "https://127.0.0.1:4000/cb",
    "http://127.0.0.1:4000/cb?x=1",
])
async def test_rfc8252_7_3_port_exception_is_only_for_loopback_ip_literals(running, uri):
    cid, _ = await make_rp(running, token_endpoint_auth_method="none",
                           redirect_uris=["http://127.0.0.1/cb", "http://localhost/cb"])
    assert is_page(await running.http.get("/authorize", params=_request(cid, redirect_uri=uri)))


async def test_rfc8252_7_3_no_port_exception_for_other_hosts(running):
    cid, _ = await make_rp(running, redirect_uris=["https://rp.example:8443/cb"])
    assert is_page(await running.http.get("/authorize", params=_request(cid, redirect_uri="https://rp.example:9443/cb")))
    assert is_page(await running.http.get("/authorize", params=_request(cid, redirect_uri="https://rp.example/cb")))


async def test_rfc6749_3_1_repeated_parameter_in_post_is_invalid_request_redirect(running):
    """A POSTed authorization request with a repeated scope goes back to the client (RFC 6749 §4.1.2.1),
    because client and redirect URI are valid; only a repeated client_id/redirect_uri stays a page."""
    cid, _ = await make_rp(running)
    body = urlencode([*_request(cid).items(), ("scope", "openid profile")])
    r = await running.http.post("/authorize", content=body,
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert_redirect_error(r, "invalid_request")
    body = urlencode([*_request(cid).items(), ("client_id", cid)])
    r = await running.http.post("/authorize", content=body,
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert is_page(r)


@pytest.mark.parametrize("name", ["nonce", "login_hint", "acr_values", "claims", "id_token_hint", "state"])
async def test_stored_parameters_are_bounded_so_an_anonymous_request_cannot_park_a_megabyte(running, name):
    """Attack: every /authorize request is kept as an interaction for its lifetime; a 60 KB parameter was
    stored as sent. Each kept parameter has a cap (authorize.STORED_PARAM_LIMITS): over it is
    invalid_request (RFC 6749 §4.1.2.1), at it the request goes on."""
    from ostiary.server.authorize import STORED_PARAM_LIMITS

    cid, _ = await make_rp(running)
    limit = STORED_PARAM_LIMITS[name]
    over = _request(cid, **{name: "a" * (limit + 1)})
    r = await running.http.post("/authorize", data=over)
    q = assert_redirect_error(r, "invalid_request", state=over["state"])
    assert name in q["error_description"]
    if name in ("nonce", "login_hint", "acr_values", "state"):  # at the cap: on to the sign-in
        at = _request(cid, **{name: "a" * limit})
        r = await running.http.post("/authorize", data=at)
        assert r.status_code == 303 and r.headers["location"].startswith("/interaction/"), r.headers
