"""Issue 9 item 6: every field of every discovery document has a test that the server does what it says.

`FIELDS` names, for each field, the test that exercises it; a field the server starts advertising
without an entry here fails `test_every_discovery_field_has_a_test`. The fields with no test
elsewhere are tested below.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tests.conftest import RunningApp, basic
from tests.protocol._helpers import CC, assertion, assertion_form, public_jwks

from ._oidc_flow import ISSUER, browser, decode_jwt, exchange, make_rp, make_user, run_flow

HERE = Path(__file__).parent
D = "test_oidc_discovery.py"
J = "test_discovery_jwks.py"
A = "test_oidc_authorize.py"
F = "test_discovery_fields.py"
BCP = "test_oidc_security_bcp.py"
LOGOUT = "test_oidc_logout.py"
FRONT = "test_oidc_frontchannel_logout.py"
FRAMED = "test_frontchannel_logout_4_signed_out_page_frames_uri_with_iss_and_sid_then_moves_on"
SAME_AUTH = "test_introspection_and_revocation_take_the_token_endpoint_auth"
PUBLIC_REVOKES = "test_revocation_takes_a_public_client_and_introspection_does_not"

FIELDS: dict[str, tuple[str, str]] = {
    "issuer": (D, "test_oidc_discovery_3_required_fields_are_present"),
    "authorization_endpoint": (A, "test_rfc6749_4_1_1_authorization_request_by_get_gives_code"),
    "token_endpoint": (J, "test_rfc8414_2_every_advertised_endpoint_works"),
    "userinfo_endpoint": (D, "test_oidc_discovery_3_advertised_endpoints_answer"),
    "end_session_endpoint": (D, "test_oidc_discovery_3_advertised_endpoints_answer"),
    "introspection_endpoint": (J, "test_rfc8414_2_every_advertised_endpoint_works"),
    "revocation_endpoint": (J, "test_rfc8414_2_every_advertised_endpoint_works"),
    "registration_endpoint": (F, "test_registration_endpoint_registers"),
    "jwks_uri": (D, "test_oidc_discovery_3_every_advertised_id_token_alg_really_signs"),
    "response_types_supported": (A, "test_rfc6749_4_1_2_1_other_response_types_are_unsupported_response_type"),
    "response_modes_supported": (A, "test_oauth_form_post_2_response_is_an_auto_submitting_form"),
    "grant_types_supported": (F, "test_every_advertised_grant_type_is_served"),
    "code_challenge_methods_supported": (A, "test_rfc7636_4_3_plain_code_challenge_method_is_refused"),
    "scopes_supported": (F, "test_every_advertised_oidc_scope_is_granted"),
    "subject_types_supported": ("test_oidc_pairwise.py",
                                "test_oidc_core_8_1_pairwise_sub_differs_per_sector_and_matches_in_id_token_and_userinfo"),
    "claims_supported": (F, "test_claims_supported_are_exactly_the_claims_released"),
    "acr_values_supported": ("test_signin_levels.py", "test_acr_values_supported_each_level_is_reached_and_stated"),
    "claims_parameter_supported": ("test_oidc_tokens.py",
                                   "test_oidc_core_5_5_claims_parameter_puts_named_claims_in_id_token_and_userinfo"),
    "request_parameter_supported": (A, "test_oidc_core_6_request_objects_are_not_supported"),
    "request_uri_parameter_supported": (A, "test_oidc_core_6_request_objects_are_not_supported"),
    "prompt_values_supported": ("test_oidc_sessions_prompt.py",
                                "test_oidc_core_3_1_2_1_prompt_none_without_session_is_login_required"),
    "authorization_response_iss_parameter_supported": (
        BCP, "test_rfc9700_4_4_2_mix_up_defence_iss_in_every_authorization_response"),
    "id_token_signing_alg_values_supported": (D, "test_oidc_discovery_3_every_advertised_id_token_alg_really_signs"),
    "access_token_signing_alg_values_supported": (F, "test_access_tokens_are_signed_with_the_advertised_alg"),
    "token_endpoint_auth_methods_supported": (J, "test_rfc8414_2_advertised_grant_types_and_methods_are_supported"),
    "token_endpoint_auth_signing_alg_values_supported": (F, "test_every_advertised_assertion_alg_authenticates"),
    "introspection_endpoint_auth_methods_supported": (F, SAME_AUTH),
    "introspection_endpoint_auth_signing_alg_values_supported": (F, SAME_AUTH),
    "revocation_endpoint_auth_methods_supported": (F, PUBLIC_REVOKES),
    "revocation_endpoint_auth_signing_alg_values_supported": (F, SAME_AUTH),
    "backchannel_logout_supported": (LOGOUT, "test_backchannel_logout_2_4_logout_token_is_sent_to_each_client"),
    "backchannel_logout_session_supported": (LOGOUT, "test_backchannel_logout_2_4_logout_token_is_sent_to_each_client"),
    "frontchannel_logout_supported": (FRONT, FRAMED),
    "frontchannel_logout_session_supported": (FRONT, FRAMED),
    # SMART App Launch 2.2 smart-configuration (the rest is the same as above)
    "capabilities": ("test_smart_ehr_launch.py",
                     "test_smart_2_2_configuration_has_required_fields_and_exact_capabilities"),
    "management_endpoint": ("test_smart_checks.py", "test_smart_2_2_configuration_has_the_management_endpoint"),
}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: discovery, not storage."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


SMART_EHR, SMART_ALONE = "test_smart_ehr_launch.py", "test_smart_standalone.py"
EHR_CONTEXT = "test_smart_ehr_launch_binds_context_into_token_response_and_access_token"
OFFLINE_ONLINE = "test_smart_refresh_offline_survives_logout_online_dies_with_session"
CHOSEN_PATIENT = "test_smart_standalone_token_reads_chosen_patient_and_not_another"
# SMART App Launch 2.2 §"Capabilities": each advertised capability is a promise of its own.
CAPABILITIES: dict[str, tuple[str, str]] = {
    "launch-ehr": (SMART_EHR, EHR_CONTEXT),
    "launch-standalone": (SMART_ALONE, "test_smart_standalone_launch_patient_shows_picker_and_search_by_name"),
    "authorize-post": (A, "test_oidc_core_3_1_2_1_authorization_request_by_post_gives_code"),
    "client-public": ("test_oidc_refresh.py", "test_rfc9700_4_14_2_public_client_refresh_tokens_rotate"),
    "client-confidential-symmetric": ("test_client_auth.py", "test_oidc_core_9_client_secret_jwt_hs256"),
    "client-confidential-asymmetric": ("test_smart_backend.py",
                                       "test_smart_backend_services_private_key_jwt_token_reads_fhir"),
    "sso-openid-connect": (SMART_ALONE, "test_smart_fhiruser_in_id_token_and_userinfo_when_granted"),
    "context-ehr-patient": (SMART_EHR, EHR_CONTEXT),
    "context-ehr-encounter": (SMART_EHR, EHR_CONTEXT),
    "context-standalone-patient": (SMART_ALONE, CHOSEN_PATIENT),
    "permission-offline": (SMART_ALONE, OFFLINE_ONLINE),
    "permission-online": (SMART_ALONE, OFFLINE_ONLINE),
    "permission-patient": (SMART_ALONE, CHOSEN_PATIENT),
    "permission-user": ("test_smart_enforcement.py", "test_smart_enforcement"),
    "permission-v1": (SMART_ALONE, "test_smart_v1_scopes_are_granted_in_v1_and_work"),
    "permission-v2": (SMART_ALONE, "test_smart_scopes_subset_is_granted_and_returned"),
}


def _defined(file: str, name: str) -> bool:
    found = sorted(HERE.glob(file))
    return bool(found) and re.search(rf"^async def {name}\(|^def {name}\(", found[0].read_text(), re.M) is not None


async def test_every_discovery_field_has_a_test(running: RunningApp) -> None:
    docs = [(await running.http.get(path)).json() for path in (
        "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
        "/fhir/.well-known/smart-configuration")]
    for field in sorted({name for doc in docs for name in doc}):
        assert field in FIELDS, f"{field} is advertised but no test is named for it in FIELDS"
        file, name = FIELDS[field]
        assert _defined(file, name), f"{field}: {file}::{name} does not exist"
    smart = docs[2]["capabilities"]
    assert set(smart) == CAPABILITIES.keys(), "a SMART capability is advertised without a test (or gone)"
    for capability, (file, name) in CAPABILITIES.items():
        assert _defined(file, name), f"{capability}: {file}::{name} does not exist"


async def _meta(running: RunningApp) -> dict[str, object]:
    meta: dict[str, object] = (await running.http.get("/.well-known/openid-configuration")).json()
    return meta


async def test_registration_endpoint_registers(running: RunningApp) -> None:
    meta = await _meta(running)
    r = await running.http.post(str(meta["registration_endpoint"]).removeprefix(ISSUER), json={
        "grant_types": ["client_credentials"]}, headers={"Authorization": "Bearer initial-token-for-tests"})
    assert r.status_code == 201, r.text


async def test_every_advertised_grant_type_is_served(running: RunningApp) -> None:
    meta = await _meta(running)
    for grant in meta["grant_types_supported"]:  # type: ignore[attr-defined]
        r = await running.http.post("/token", data={"grant_type": grant})
        assert r.json()["error"] != "unsupported_grant_type", grant
    r = await running.http.post("/token", data={"grant_type": "password"})
    assert r.json()["error"] == "unsupported_grant_type"


async def test_every_advertised_oidc_scope_is_granted(running: RunningApp) -> None:
    meta = await _meta(running)
    scopes = " ".join(s for s in meta["scopes_supported"] if s != "offline_access")  # type: ignore[attr-defined]
    user = await make_user(running)
    cid, secret = await make_rp(running, scope=scopes + " offline_access")
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope=scopes + " offline_access")
        r = await exchange(b, flow)
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {*scopes.split(), "offline_access"}
    assert "refresh_token" in r.json()  # offline_access does what it says


async def test_access_tokens_are_signed_with_the_advertised_alg(running: RunningApp) -> None:
    meta = await _meta(running)
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post("/token", data=CC, headers=basic(cid, secret))
    header, _ = await decode_jwt(running.http, r.json()["access_token"])
    assert [header["alg"]] == meta["access_token_signing_alg_values_supported"]


def _key_for(alg: str) -> ECKey | RSAKey | OKPKey:
    if alg.startswith(("RS", "PS")):
        return RSAKey.generate_key(2048, private=True, auto_kid=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True, auto_kid=True)
    curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
    return ECKey.generate_key(curve, private=True, auto_kid=True)


async def test_every_advertised_assertion_alg_authenticates(running: RunningApp) -> None:
    meta = await _meta(running)
    for alg in meta["token_endpoint_auth_signing_alg_values_supported"]:  # type: ignore[attr-defined]
        if alg.startswith("HS"):
            cid, secret = await running.add_client(token_endpoint_auth_method="client_secret_jwt", scope="api:read",
                                                   token_endpoint_auth_signing_alg=alg)
            from joserfc.jwk import OctKey

            key: object = OctKey.import_key(str(secret).encode())
        else:
            key = _key_for(alg)
            cid, _ = await running.add_client(token_endpoint_auth_method="private_key_jwt", scope="api:read",
                                              jwks=public_jwks(key))
        r = await running.http.post("/token", data=assertion_form(assertion(key, cid, alg=alg)))  # type: ignore[arg-type]
        assert r.status_code == 200, (alg, r.text)


async def test_introspection_and_revocation_take_the_token_endpoint_auth(running: RunningApp) -> None:
    """One authenticator serves the three endpoints: they advertise what the token endpoint takes
    (minus `none` for introspection, RFC 7662 §2.1), and each method works at each of them."""
    meta = await _meta(running)
    confidential = [m for m in meta["token_endpoint_auth_methods_supported"] if m != "none"]  # type: ignore[attr-defined]
    assert meta["introspection_endpoint_auth_methods_supported"] == confidential
    assert set(meta["revocation_endpoint_auth_methods_supported"]) <= {*confidential, "none"}  # type: ignore[arg-type]
    for name in ("introspection", "revocation"):
        assert meta[f"{name}_endpoint_auth_signing_alg_values_supported"] == \
            meta["token_endpoint_auth_signing_alg_values_supported"]
    cid, secret = await running.add_client(scope="api:read", token_endpoint_auth_method="client_secret_post")
    token = (await running.http.post("/token", data={**CC, "client_id": cid, "client_secret": secret})).json()
    auth = {"client_id": cid, "client_secret": str(secret)}
    r = await running.http.post("/introspect", data={"token": token["access_token"], **auth})
    assert r.status_code == 200 and r.json()["active"] is True
    assert (await running.http.post("/revoke", data={"token": token["access_token"], **auth})).status_code == 200


async def test_claims_supported_are_exactly_the_claims_released(running: RunningApp) -> None:
    """Nothing released that is not advertised, and every advertised claim really comes (ID token or UserInfo)."""
    meta = await _meta(running)
    profile = {"name": "Alice Example", "given_name": "Alice", "family_name": "Example", "middle_name": "M",
               "nickname": "al", "profile": "https://alice.example", "picture": "https://alice.example/a.png",
               "website": "https://alice.example", "gender": "female", "birthdate": "1990-01-01",
               "zoneinfo": "Europe/Paris", "locale": "en", "email": "alice@example.com", "email_verified": True,
               "address": {"country": "FR"}, "phone_number": "+33 1 00 00 00 00", "phone_number_verified": True}
    user = await make_user(running, **profile)
    scope = " ".join(meta["scopes_supported"])  # type: ignore[arg-type]
    cid, secret = await make_rp(running, scope=scope)
    async with browser(running) as b:
        body = (await exchange(b, await run_flow(b, cid, secret, user, scope=scope))).json()
        _, id_claims = await decode_jwt(b, body["id_token"])
        info = (await b.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    released = (set(id_claims) | set(info)) - {"at_hash"}
    assert released <= set(meta["claims_supported"])  # type: ignore[arg-type]
    assert set(meta["claims_supported"]) <= released  # type: ignore[arg-type]


async def test_revocation_takes_a_public_client_and_introspection_does_not(running: RunningApp) -> None:
    """RFC 7009 §2.1 / RFC 7662 §2.1: `none` is advertised for revocation only, and that is what is served."""
    meta = await _meta(running)
    assert "none" in meta["revocation_endpoint_auth_methods_supported"]  # type: ignore[operator]
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]  # type: ignore[operator]
    public, _ = await make_rp(running, token_endpoint_auth_method="none")
    assert (await running.http.post("/revoke", data={"token": "unknown", "client_id": public})).status_code == 200
    r = await running.http.post("/introspect", data={"token": "unknown", "client_id": public})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
