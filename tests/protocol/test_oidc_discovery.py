"""OpenID Connect Discovery 1.0 §3-4: every required field, and only what is really supported."""

from __future__ import annotations

import pytest

from ._oidc_flow import ISSUER, browser, decode_jwt, exchange, make_rp, make_user, run_flow

REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
            "subject_types_supported", "id_token_signing_alg_values_supported")


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: this module checks request validation and metadata, not storage (the other modules run
    on PostgreSQL too)."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def meta(running):
    r = await running.http.get("/.well-known/openid-configuration")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


async def test_oidc_discovery_3_required_fields_are_present(meta):
    for name in REQUIRED:
        assert meta.get(name), name
    assert meta["issuer"] == ISSUER  # §4.3: exactly the issuer the document was fetched for
    assert meta["userinfo_endpoint"] == ISSUER + "/userinfo"
    for name, value in meta.items():
        if name.endswith("_endpoint") or name == "jwks_uri":
            assert value.startswith(ISSUER + "/"), name
    assert "RS256" in meta["id_token_signing_alg_values_supported"]  # §3: MUST include RS256
    assert "none" not in meta["id_token_signing_alg_values_supported"]


async def test_oidc_discovery_3_advertises_exactly_what_is_supported(meta):
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["response_modes_supported"]) == {"query", "form_post"}
    assert meta["subject_types_supported"] == ["public", "pairwise"]  # tests/protocol/test_oidc_pairwise.py
    assert "acr" in meta["claims_supported"] and "acr_values_supported" in meta  # levels (issue 11 item 7)
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(meta["grant_types_supported"])
    assert "implicit" not in meta["grant_types_supported"] and "password" not in meta["grant_types_supported"]
    assert {"openid", "profile", "email", "address", "phone", "offline_access"} <= set(meta["scopes_supported"])
    assert meta["request_parameter_supported"] is False and meta["request_uri_parameter_supported"] is False
    assert meta["claims_parameter_supported"] is True
    assert meta["authorization_response_iss_parameter_supported"] is True  # RFC 9207 §3
    assert set(meta["prompt_values_supported"]) == {"none", "login", "consent", "select_account"}
    assert meta["end_session_endpoint"] == ISSUER + "/logout"
    assert meta["backchannel_logout_supported"] is True
    assert "none" in meta["token_endpoint_auth_methods_supported"]  # public clients with PKCE


async def test_oidc_discovery_3_oauth_metadata_agrees(running, meta):
    oauth = (await running.http.get("/.well-known/oauth-authorization-server")).json()
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
                 "code_challenge_methods_supported"):
        assert oauth[name] == meta[name], name


async def test_oidc_discovery_3_every_advertised_id_token_alg_really_signs(running, meta):
    user = await make_user(running)
    jwks = (await running.http.get(meta["jwks_uri"])).json()
    for key in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private key material published"
    for alg in meta["id_token_signing_alg_values_supported"]:
        cid, secret = await make_rp(running, id_token_signed_response_alg=alg)
        async with browser(running) as b:
            body = (await exchange(b, await run_flow(b, cid, secret, user))).json()
            header, claims = await decode_jwt(b, body["id_token"], alg)
            assert header["alg"] == alg and claims["iss"] == ISSUER


async def test_oidc_discovery_3_advertised_endpoints_answer(running, meta):
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint",
                 "revocation_endpoint", "introspection_endpoint"):
        r = await running.http.get(meta[name])
        assert r.status_code != 404, name


async def test_issue11_7_acr_is_advertised_and_every_id_token_states_the_level_met(running, meta):
    """Discovery promises what the server does: the levels (acr_values_supported), and an `acr` in every
    ID token; an unknown acr_values value is voluntary (OIDC Core §3.1.2.1): answered with the level met."""
    assert "acr" in meta["claims_supported"]
    assert meta["acr_values_supported"] == ["urn:ostiary:acr:password", "urn:ostiary:acr:mfa", "phr", "phrh"]
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope="openid", acr_values="urn:example:loa:2")
        r = await exchange(b, flow)
    _, claims = await decode_jwt(running.http, r.json()["id_token"])
    assert claims["acr"] == "urn:ostiary:acr:password" and claims["amr"] == ["pwd"]
    for claim in ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr"):
        assert claim in meta["claims_supported"], claim
