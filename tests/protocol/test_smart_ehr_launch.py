"""SMART App Launch 2.2: the smart-configuration document, and the EHR launch (POST /smart/launch, then
an authorization request with `launch`), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from ostiary.smart.configuration import CAPABILITIES
from ostiary.smart.launch import LaunchContext
from tests.protocol._oidc_flow import ISSUER, REDIRECT, browser, decode_jwt, exchange, query_of
from tests.protocol._smart import (
    FHIR,
    bearer,
    create_launch,
    ehr_token,
    load_data,
    practitioner,
    smart_app,
    smart_flow,
    with_access,
)


@pytest.fixture(scope="module", autouse=True)
async def sample(running):
    await load_data(running)


# --- /.well-known/smart-configuration (SMART 2.2 §"Metadata") ------------------------------------------

REQUIRED = ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "grant_types_supported",
            "token_endpoint_auth_methods_supported", "capabilities", "code_challenge_methods_supported",
            "scopes_supported", "response_types_supported")


@pytest.mark.parametrize("path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"])
async def test_smart_2_2_configuration_has_required_fields_and_exact_capabilities(running, path):
    r = await running.http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    for name in REQUIRED:
        assert doc.get(name), name
    assert doc["capabilities"] == list(CAPABILITIES)
    assert doc["code_challenge_methods_supported"] == ["S256"]
    meta = (await running.http.get("/.well-known/openid-configuration")).json()
    for name in ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "registration_endpoint"):
        assert doc[name] == meta[name], name
    assert {"authorization_code", "client_credentials", "refresh_token"} <= set(doc["grant_types_supported"])
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    # SMART Backend Services: RS384 and ES384 client assertions SHALL be supported
    assert {"RS384", "ES384"} <= set(doc["token_endpoint_auth_signing_alg_values_supported"])
    assert {"launch", "launch/patient", "fhirUser", "offline_access", "online_access"} <= set(doc["scopes_supported"])


async def test_smart_2_2_both_configuration_urls_serve_the_same_document(running):
    a = (await running.http.get("/.well-known/smart-configuration")).json()
    b = (await running.http.get("/fhir/.well-known/smart-configuration")).json()
    assert a == b


# --- POST /smart/launch: who may create a launch ---------------------------------------------------------

async def test_ehr_launch_api_without_token_is_401(running):
    r = await running.http.post("/smart/launch", json={"patient": "pat-001"})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_ehr_launch_api_with_unknown_token_is_401(running):
    r = await running.http.post("/smart/launch", json={"patient": "pat-001"}, headers=bearer("not-a-token"))
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_token"


async def test_ehr_launch_api_needs_ehr_launch_scope_403(running):
    token = await ehr_token(running, scope="api:read")  # aud is the issuer, the scope is missing
    r = await running.http.post("/smart/launch", json={"patient": "pat-001"}, headers=bearer(token))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "insufficient_scope"


MALFORMED = [
    ("not json", b"{patient"),
    ("array", b'["pat-001"]'),
    ("patient number", b'{"patient": 1}'),
    ("patient path", b'{"patient": "Patient/a/b"}'),
    ("fhirContext object", b'{"patient": "pat-001", "fhirContext": {"reference": "Encounter/x"}}'),
    ("fhirContext without reference", b'{"patient": "pat-001", "fhirContext": [{"type": "Encounter"}]}'),
    ("banner string", b'{"patient": "pat-001", "need_patient_banner": "yes"}'),
    ("intent number", b'{"patient": "pat-001", "intent": 3}'),
    ("unknown patient", b'{"patient": "pat-999"}'),
]


@pytest.mark.parametrize(("case", "body"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_ehr_launch_api_malformed_body_or_unknown_patient_is_400(running, case, body):
    token = await ehr_token(running)
    app = await smart_app(running)
    if body.startswith(b"{\""):  # a well-formed request but for the case: name the app, as required
        body = b'{"client_id": "' + app[0].encode() + b'", ' + body[1:]
    r = await running.http.post("/smart/launch", content=body,
                                headers={**bearer(token), "Content-Type": "application/json"})
    assert r.status_code == 400, (case, r.text)
    assert r.json()["error"] == "invalid_request"


# --- the authorization request with `launch` -------------------------------------------------------------

CONTEXT = {"patient": "pat-001", "encounter": "enc-001-1", "fhirContext": [{"reference": "Encounter/enc-001-1"}],
           "need_patient_banner": False, "smart_style_url": "https://ehr.example/style.json",
           "intent": "reconcile-medications"}


async def test_smart_ehr_launch_binds_context_into_token_response_and_access_token(running):
    token = await ehr_token(running)
    app = await smart_app(running, scope="patient/*.rs launch")
    launch = await create_launch(running, token, client_id=app[0], **CONTEXT)
    user = await practitioner(running)
    async with browser(running) as b:
        flow = await smart_flow(b, *app, user, scope="openid fhirUser launch patient/*.rs", launch=launch)
        assert "select_patient" not in flow.pages  # the EHR chose the patient
        r = await exchange(b, flow)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["patient"] == "pat-001" and body["encounter"] == "enc-001-1"
        assert body["fhirContext"] == [{"reference": "Encounter/enc-001-1"}]
        assert body["need_patient_banner"] is False
        assert body["smart_style_url"] == "https://ehr.example/style.json"
        assert body["intent"] == "reconcile-medications"
        assert set(body["scope"].split()) == {"openid", "fhirUser", "launch", "patient/*.rs"}
        _, claims = await decode_jwt(b, body["access_token"])
        assert claims["aud"] == FHIR and claims["patient"] == "pat-001" and claims["encounter"] == "enc-001-1"
        patient = await b.get(f"{FHIR}/Patient/pat-001", headers=bearer(body["access_token"]))
        assert patient.status_code == 200 and patient.json()["id"] == "pat-001"


async def test_smart_ehr_launch_value_for_another_client_is_refused(running):
    token = await ehr_token(running)
    mine, other = await smart_app(running), await smart_app(running)
    launch = await create_launch(running, token, patient="pat-001", client_id=mine[0])
    async with browser(running) as b:
        r = await b.get("/authorize", params=_params(other[0], launch))
    assert r.status_code == 303
    params = query_of(r.headers["location"])
    assert params["error"] == "invalid_request" and params["iss"] == ISSUER
    assert r.headers["location"].startswith(REDIRECT)


async def test_smart_ehr_launch_unknown_launch_is_invalid_request_redirect(running):
    app = await smart_app(running)
    async with browser(running) as b:
        r = await b.get("/authorize", params=_params(app[0], "no-such-launch"))
    assert r.status_code == 303 and query_of(r.headers["location"])["error"] == "invalid_request"


async def test_smart_ehr_launch_expired_launch_is_invalid_request_redirect(running):
    app = await smart_app(running)
    value = "expired-launch-" + app[0][:8]
    await running.provider.flow.interactions.save(
        "launch:" + value, LaunchContext(patient="pat-001").to_dict(), int(time.time()) - 1)
    async with browser(running) as b:
        r = await b.get("/authorize", params=_params(app[0], value))
    assert r.status_code == 303 and query_of(r.headers["location"])["error"] == "invalid_request"


async def test_smart_launch_scope_without_launch_parameter_is_invalid_request(running):
    app = await smart_app(running)
    async with browser(running) as b:
        params = _params(app[0], "x")
        del params["launch"]
        r = await b.get("/authorize", params=params)
    assert r.status_code == 303
    out = query_of(r.headers["location"])
    assert out["error"] == "invalid_request" and "launch" in out["error_description"]


async def test_smart_launch_parameter_without_launch_scope_is_refused(running):
    token = await ehr_token(running)
    app = await smart_app(running)
    launch = await create_launch(running, token, patient="pat-001", client_id=app[0])
    async with browser(running) as b:
        r = await b.get("/authorize", params={**_params(app[0], launch), "scope": "openid patient/*.rs"})
    assert r.status_code == 303 and query_of(r.headers["location"])["error"] == "invalid_scope"


def _params(client_id: str, launch: str) -> dict[str, str]:
    return {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "state": "s1",
            "scope": "openid launch patient/*.rs", "launch": launch, "aud": FHIR,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}


async def test_smart_launcher_shows_app_names_without_bidi_and_marks_self_registered_ones(running):
    """Attack: a self-registered app named with a right-to-left override or invisible characters poses
    as another app in the EHR launcher, beside the operator's apps (every other page strips them)."""
    from tests.protocol._oidc_flow import make_user, run_flow

    client, issued = await running.provider.registry.create(
        {"grant_types": ["authorization_code"], "redirect_uris": [REDIRECT], "scope": "openid launch",
         "client_name": "Labs\u202e weiveR\u200b", "initiate_login_uri": "https://rp.example/launch"},
        registration_token=True, level="registrant")
    # the launcher is for EHR users: the launch role (issue 8)
    user = await with_access(running, await make_user(running), "Practitioner/prac-01", roles=frozenset({"launch"}),
                             all_patients=True)
    async with browser(running) as b:
        await run_flow(b, client.client_id, issued.client_secret, user, scope="openid")  # a signed-in session
        r = await b.get("/smart/launcher")
        assert r.status_code == 200, r.text
        assert "\u202e" not in r.text and "\u200b" not in r.text
        assert "Labs weiveR (unverified app)" in r.text
