"""Every field of every discovery document is a promise with a test (issue 9 item 6).

OpenID Connect Discovery 1.0 §3, RFC 8414 §2 and SMART App Launch 2.2 §"Metadata": `PROMISES` names,
for each field the server publishes, the test that shows the server does what the field says: a
check in this module (`local`) or a named test elsewhere. A field added to a document without an
entry here fails `test_discovery_every_published_field_has_a_test`.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from ostiary import jwt
from tests.conftest import basic

from ._helpers import CC, assertion, assertion_form, public_jwks
from ._oidc_flow import REDIRECT, browser, decode_jwt, exchange, make_rp, make_user, run_flow

DOCUMENTS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
             "/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration")
LOCAL = "local"
AUTHORIZE = "test_oidc_authorize"
SMART_STANDALONE = "test_smart_standalone"
SMART_EHR = "test_smart_ehr_launch"
LOGOUT = "test_oidc_logout"
FRONT = "test_oidc_frontchannel_logout"
PROMPT = "test_oidc_sessions_prompt"
EHR_CONTEXT = f"{SMART_EHR}::test_smart_ehr_launch_binds_context_into_token_response_and_access_token"
FRONT_FRAMES = f"{FRONT}::test_frontchannel_logout_4_signed_out_page_frames_uri_with_iss_and_sid_then_moves_on"

PROMISES: dict[str, tuple[str, ...]] = {
    # endpoints: each is used for what it is named after
    "issuer": ("test_oidc_discovery::test_oidc_discovery_3_required_fields_are_present",
               "test_access_tokens::test_rfc9068_2_2_required_claims"),
    "authorization_endpoint": (f"{AUTHORIZE}::test_rfc6749_4_1_1_authorization_request_by_get_gives_code",),
    "token_endpoint": ("test_discovery_jwks::test_rfc8414_2_every_advertised_endpoint_works",),
    "jwks_uri": ("test_access_tokens::test_rfc9068_4_token_verifies_against_published_jwks",),
    "introspection_endpoint": ("test_introspection::test_rfc7662_2_2_active_jwt_gives_full_claims",),
    "revocation_endpoint": ("test_revocation::test_rfc7009_2_1_revoked_jwt_is_inactive",),
    "userinfo_endpoint": ("test_oidc_userinfo::test_oidc_core_5_3_1_userinfo_by_get_and_post_with_bearer_header",),
    "end_session_endpoint":
        (f"{LOGOUT}::test_rp_initiated_logout_2_confirm_then_redirect_with_state_and_session_gone",),
    "registration_endpoint": ("test_discovery_jwks::test_rfc8414_2_every_advertised_endpoint_works",),
    "management_endpoint": ("test_smart_checks::test_smart_2_2_configuration_has_the_management_endpoint",),
    # what the authorization endpoint accepts
    "response_types_supported": (
        f"{AUTHORIZE}::test_rfc6749_4_1_2_1_other_response_types_are_unsupported_response_type",),
    "response_modes_supported": (f"{AUTHORIZE}::test_oauth_form_post_2_response_is_an_auto_submitting_form",
                                 f"{AUTHORIZE}::test_oauth_multiple_response_types_2_1_unknown_response_mode_is_invalid_request"),
    "code_challenge_methods_supported": (
        f"{AUTHORIZE}::test_rfc7636_4_4_1_public_client_without_code_challenge_is_invalid_request",),
    "prompt_values_supported": (f"{PROMPT}::test_oidc_core_3_1_2_1_prompt_select_account_shows_the_chooser",
                                f"{PROMPT}::test_oidc_core_3_1_2_1_prompt_login_forces_the_login_page",
                                f"{AUTHORIZE}::test_oidc_core_3_1_2_1_unknown_prompt_is_invalid_request"),
    "request_parameter_supported": (f"{AUTHORIZE}::test_oidc_core_6_request_objects_are_not_supported",),
    "request_uri_parameter_supported": (f"{AUTHORIZE}::test_oidc_core_6_request_objects_are_not_supported",),
    "claims_parameter_supported":
        ("test_claims_consent::test_oidc_core_5_5_claims_of_granted_scopes_need_no_box_ticked",),
    "authorization_response_iss_parameter_supported": (LOCAL,),
    # tokens and claims
    "grant_types_supported": (LOCAL,),
    "scopes_supported": (LOCAL, "test_smart_enforcement::test_smart_enforcement"),
    "claims_supported": (LOCAL,),
    "subject_types_supported":
        ("test_oidc_pairwise::test_oidc_core_8_1_pairwise_sub_differs_per_sector_and_matches_in_id_token_and_userinfo",),
    "id_token_signing_alg_values_supported": (
        "test_oidc_discovery::test_oidc_discovery_3_every_advertised_id_token_alg_really_signs",),
    "access_token_signing_alg_values_supported": (LOCAL,),
    # client authentication at each endpoint
    "token_endpoint_auth_methods_supported": (LOCAL,),
    "token_endpoint_auth_signing_alg_values_supported": (LOCAL,),
    "introspection_endpoint_auth_methods_supported": (
        LOCAL, "test_introspection::test_rfc7662_2_1_public_client_may_not_introspect"),
    "introspection_endpoint_auth_signing_alg_values_supported": (LOCAL,),
    "revocation_endpoint_auth_methods_supported": (LOCAL,),
    "revocation_endpoint_auth_signing_alg_values_supported": (LOCAL,),
    # logout
    "backchannel_logout_supported": (f"{LOGOUT}::test_backchannel_logout_2_4_logout_token_is_sent_to_each_client",),
    "backchannel_logout_session_supported":
        (f"{LOGOUT}::test_backchannel_logout_2_4_logout_token_is_sent_to_each_client",),
    "frontchannel_logout_supported": (FRONT_FRAMES,),
    "frontchannel_logout_session_supported": (FRONT_FRAMES,),
    # SMART: each capability is a field of its own (`capabilities` below)
    "capabilities": (LOCAL,),
}
CAPABILITIES: dict[str, str] = {
    "launch-ehr": EHR_CONTEXT,
    "launch-standalone": f"{SMART_STANDALONE}::test_smart_standalone_launch_patient_shows_picker_and_search_by_name",
    "authorize-post": f"{AUTHORIZE}::test_oidc_core_3_1_2_1_authorization_request_by_post_gives_code",
    "client-public": "test_oidc_refresh::test_rfc9700_4_14_2_public_client_refresh_tokens_rotate",
    "client-confidential-symmetric": "test_client_auth::test_oidc_core_9_client_secret_jwt_hs256",
    "client-confidential-asymmetric":
        "test_smart_backend::test_smart_backend_services_private_key_jwt_token_reads_fhir",
    "sso-openid-connect": f"{SMART_STANDALONE}::test_smart_fhiruser_in_id_token_and_userinfo_when_granted",
    "context-ehr-patient": EHR_CONTEXT,
    "context-ehr-encounter": EHR_CONTEXT,
    "context-standalone-patient":
        f"{SMART_STANDALONE}::test_smart_standalone_token_reads_chosen_patient_and_not_another",
    "permission-offline": f"{SMART_STANDALONE}::test_smart_refresh_offline_survives_logout_online_dies_with_session",
    "permission-online": f"{SMART_STANDALONE}::test_smart_refresh_offline_survives_logout_online_dies_with_session",
    "permission-patient": f"{SMART_STANDALONE}::test_smart_standalone_token_reads_chosen_patient_and_not_another",
    "permission-user": "test_smart_enforcement::test_smart_enforcement",
    "permission-v1": f"{SMART_STANDALONE}::test_smart_v1_scopes_are_granted_in_v1_and_work",
    "permission-v2": f"{SMART_STANDALONE}::test_smart_scopes_subset_is_granted_and_returned",
}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: these checks are about what the documents promise, not storage."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def documents(running) -> dict[str, dict[str, Any]]:
    out = {}
    for path in DOCUMENTS:
        r = await running.http.get(path)
        assert r.status_code == 200, path
        out[path] = r.json()
    return out


def _test_exists(reference: str) -> bool:
    module, name = reference.split("::")
    return callable(getattr(importlib.import_module(f"tests.protocol.{module}"), name, None))


async def test_discovery_every_published_field_has_a_test(documents):
    published = {name for doc in documents.values() for name in doc}
    assert published - PROMISES.keys() == set(), "a published field without a test"
    capabilities = set(documents["/.well-known/smart-configuration"]["capabilities"])
    assert capabilities == CAPABILITIES.keys(), "a SMART capability without a test"
    references = [r for refs in PROMISES.values() for r in refs if r != LOCAL] + list(CAPABILITIES.values())
    missing = [r for r in references if not _test_exists(r)]
    assert missing == [], missing


async def test_rfc9207_2_every_authorization_response_carries_iss(running, documents):
    meta = documents["/.well-known/openid-configuration"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        ok = await run_flow(b, cid, secret, user)
        denied = await run_flow(b, cid, secret, user, approve=False, prompt="consent")
    assert ok.params["iss"] == denied.params["iss"] == meta["issuer"] and denied.params["error"] == "access_denied"


async def test_rfc8414_2_grant_types_supported_are_exactly_the_grants_served(running, documents):
    meta = documents["/.well-known/oauth-authorization-server"]
    cid, secret = await running.add_client(scope="api:read")
    for grant_type in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        assert grant_type not in meta["grant_types_supported"]
        r = await running.http.post("/token", data={"grant_type": grant_type}, headers=basic(cid, secret))
        assert r.json()["error"] == "unsupported_grant_type", grant_type
    for grant_type in meta["grant_types_supported"]:  # served: the error is about the request, not the grant
        r = await running.http.post("/token", data={"grant_type": grant_type, "code": "x", "refresh_token": "x",
                                                    "redirect_uri": REDIRECT}, headers=basic(cid, secret))
        assert r.json().get("error") != "unsupported_grant_type", grant_type


async def test_oidc_discovery_3_scopes_and_claims_supported_are_granted_and_released(running, documents):
    meta = documents["/.well-known/openid-configuration"]
    profile = {"name": "Alice Example", "given_name": "Alice", "family_name": "Example", "middle_name": "M",
               "nickname": "al", "profile": "https://alice.example", "picture": "https://alice.example/a.png",
               "website": "https://alice.example", "gender": "female", "birthdate": "1990-01-01",
               "zoneinfo": "Europe/Paris", "locale": "en", "email": "alice@example.com", "email_verified": True,
               "address": {"country": "FR"}, "phone_number": "+33 1 00 00 00 00", "phone_number_verified": True}
    user = await make_user(running, **profile)
    cid, secret = await make_rp(running, scope=" ".join(meta["scopes_supported"]))
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope=" ".join(meta["scopes_supported"]))
        body = (await exchange(b, flow)).json()
        _, id_claims = await decode_jwt(b, body["id_token"])
        info = (await b.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    assert set(body["scope"].split()) == set(meta["scopes_supported"])
    released = set(id_claims) | set(info)
    assert released - {"at_hash"} <= set(meta["claims_supported"])  # nothing unadvertised
    assert set(meta["claims_supported"]) <= released  # and every advertised claim really comes


async def test_rfc8414_2_access_token_signing_alg_is_the_one_used(running, documents):
    meta = documents["/.well-known/oauth-authorization-server"]
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data=CC, headers=basic(cid, secret))
    header = jwt.decode_unverified(r.json()["access_token"]).header
    assert header["alg"] in meta["access_token_signing_alg_values_supported"]


def _keys_for(alg: str, cache: dict[str, Any]) -> Any:
    family = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}.get(alg, "RSA")
    if family not in cache:
        cache[family] = (RSAKey.generate_key(2048, private=True, auto_kid=True) if family == "RSA"
                         else OKPKey.generate_key(family, private=True, auto_kid=True) if family == "Ed25519"
                         else ECKey.generate_key(family, private=True, auto_kid=True))
    return cache[family]


async def test_rfc8414_2_every_advertised_auth_method_and_signing_alg_authenticates(running, documents):
    """token, introspection and revocation: each advertised method (and JWS alg) is accepted there."""
    meta = documents["/.well-known/oauth-authorization-server"]
    keys: dict[str, Any] = {}
    secret_cid, secret = await running.add_client(token_endpoint_auth_method="client_secret_jwt", scope="api:read")
    for endpoint in ("token", "introspection", "revocation"):
        algs = meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert algs == meta["token_endpoint_auth_signing_alg_values_supported"]  # one authenticator for all three
        for method in meta[f"{endpoint}_endpoint_auth_methods_supported"]:
            assert method in ("client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt",
                              "none"), method
    basic_cid, basic_secret = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data=CC, headers=basic(basic_cid, basic_secret))
    token = r.json()["access_token"]
    for alg in meta["token_endpoint_auth_signing_alg_values_supported"]:
        if alg.startswith("HS"):
            cid, key = secret_cid, OctKey.import_key(secret.encode())
        else:
            key = _keys_for(alg, keys)
            cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key),
                                              scope="api:read")
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg=alg)))
        assert r.status_code == 200, (alg, r.text)
        form = {"token": token, "client_assertion_type": assertion_form("")["client_assertion_type"]}
        r = await running.http.post("/introspect", data={**form, "client_assertion": assertion(key, cid, alg=alg)})
        assert r.status_code == 200 and "active" in r.json(), (alg, r.text)
    # revocation also takes a public client (method none, RFC 7009 §2.1): it revokes only its own tokens
    assert "none" in meta["revocation_endpoint_auth_methods_supported"]
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]
    public, _ = await make_rp(running, token_endpoint_auth_method="none")
    r = await running.http.post("/revoke", data={"token": "unknown-token", "client_id": public})
    assert r.status_code == 200, r.text
    r = await running.http.post("/introspect", data={"token": token, "client_id": public})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
