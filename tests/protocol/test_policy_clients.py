"""Authorization policy, clients: trust levels at registration, admin-only metadata, grant-type rules,
token lifetimes (docs/security.md). Each test names the rule and the attack it stops."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ostiary.config import RegistrationSettings
from ostiary.errors import InvalidClientMetadata
from ostiary.server.policy.clients import SelfServiceApi
from tests.conftest import basic, settings_for, start_app

from ._helpers import assert_error, client_token
from ._oidc_flow import REDIRECT, browser, exchange, make_rp, make_user, query_of, run_flow
from ._smart import load_data, practitioner

INITIAL = {"Authorization": "Bearer initial-token-for-tests"}
CC_ONLY = {"grant_types": ["client_credentials"]}
APP = {"grant_types": ["authorization_code", "refresh_token"], "redirect_uris": [REDIRECT]}


@pytest.fixture(scope="module")
async def running(database_url):
    """Registration with the initial access token and open registration; the operator lists api:read."""
    registration = RegistrationSettings(open=True, api_scopes=("api:read",))
    async for r in start_app(settings_for(database_url, registration=registration)):
        yield r


async def _register(running, headers=INITIAL, **metadata):
    return await running.http.post("/register", json=metadata, headers=headers)


# --- trust levels: open registration -------------------------------------------------------------

async def test_policy_open_registration_cannot_register_system_scopes(running):
    """Attack: one anonymous request registered a client with system/*.cruds and read every patient."""
    r = await _register(running, headers={}, scope="system/*.cruds", **APP)
    body = assert_error(r, 400, "invalid_client_metadata")
    assert "system/*.cruds" in body["error_description"]


async def test_policy_open_registration_never_client_credentials(running):
    """Attack: an anonymous party minting itself a service identity with no user behind it."""
    r = await _register(running, headers={}, **CC_ONLY)
    body = assert_error(r, 400, "invalid_client_metadata")
    assert "client_credentials" in body["error_description"]


async def test_policy_open_registration_without_scope_gets_the_patient_app_set(running):
    """The legitimate case: a SMART patient app registers bare and can do a standalone launch."""
    r = await _register(running, headers={}, token_endpoint_auth_method="none", **APP)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["scope"] == "openid fhirUser launch/patient patient/*.rs offline_access"
    assert body["trust_level"] == "open"
    stored = await running.provider.clients.get(body["client_id"])
    assert stored.trust_level == "open"


async def test_policy_open_registration_refuses_scopes_beyond_read(running):
    r = await _register(running, headers={}, scope="openid patient/Observation.cruds", **APP)
    assert "patient/Observation.cruds" in assert_error(r, 400, "invalid_client_metadata")["error_description"]
    ok = await _register(running, headers={}, scope="openid patient/Observation.rs", **APP)
    assert ok.status_code == 201, ok.text


# --- trust levels: registrant (initial access token) -----------------------------------------------

@pytest.mark.parametrize("scope", ["system/*.rs", "user/*.cruds", "user/Patient.u", "ehr:launch", "api:write"])
async def test_policy_registrant_cannot_register_privileged_scopes(running, scope):
    """Attack: a holder of the registration token giving its client backend, writing or EHR scopes."""
    r = await _register(running, scope=f"openid {scope}", **APP)
    body = assert_error(r, 400, "invalid_client_metadata")
    assert repr(scope) in body["error_description"]


async def test_policy_registrant_gets_allow_list_and_operator_api_scopes(running):
    r = await _register(running, scope="openid fhirUser launch patient/Observation.rs offline_access", **APP)
    assert r.status_code == 201, r.text
    assert r.json()["trust_level"] == "registrant"
    api = await _register(running, scope="api:read", **CC_ONLY)
    assert api.status_code == 201, api.text
    token = await client_token(running, api.json()["client_id"], api.json()["client_secret"])
    assert token["scope"] == "api:read"


async def test_policy_registrant_without_scope_gets_the_default_its_grants_can_carry(running):
    app = await _register(running, **APP)
    assert app.status_code == 201, app.text
    assert "patient/*.*" in app.json()["scope"].split() and "launch/patient" in app.json()["scope"].split()
    service = await _register(running, **CC_ONLY)
    assert service.json()["scope"] == "api:read"  # client_credentials carries no user scopes


# --- admin-only metadata ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [
    ("skip_consent", True), ("access_token_lifetime", 7 * 24 * 3600), ("access_token_format", "opaque"),
    ("audiences", ["https://api.example"]), ("resource_server", True), ("system_scopes_with_secret", True),
    ("trust_level", "admin"), ("sector_identifier_uri", "https://sector.example/uris.json"),
    ("openid_on_client_credentials", "accept"),
])
async def test_policy_admin_only_metadata_is_never_self_assigned(running, name, value):
    """Attack: a registrant with skip_consent taking user/ data with one click; 7-day tokens; and so on."""
    for headers in (INITIAL, {}):
        r = await _register(running, headers=headers, **{name: value}, **APP)
        assert name in assert_error(r, 400, "invalid_client_metadata")["error_description"]


async def test_policy_admin_only_metadata_at_its_unset_value_is_accepted(running):
    r = await _register(running, skip_consent=False, audiences=[], **APP)
    assert r.status_code == 201, r.text


async def test_rfc7592_2_2_put_keeps_admin_fields_refuses_changed_ones(running):
    """Clients that read, edit and put back their metadata keep working; none can change an admin field."""
    reg = (await _register(running, client_name="app", **APP)).json()
    cid, token = reg["client_id"], {"Authorization": f"Bearer {reg['registration_access_token']}"}
    stored = await running.provider.clients.get(cid)  # the operator grants a lifetime cap and consent skipping
    await running.provider.clients.update(replace(stored, access_token_lifetime=600, skip_consent=True))
    current = (await running.http.get(f"/register/{cid}", headers=token)).json()
    assert current["access_token_lifetime"] == 600 and current["skip_consent"] is True
    same = await running.http.put(f"/register/{cid}", json={**current, "client_name": "renamed"}, headers=token)
    assert same.status_code == 200, same.text
    omitted = {k: v for k, v in current.items() if k not in ("access_token_lifetime", "skip_consent")}
    omitted["client_name"] = "renamed"
    kept = await running.http.put(f"/register/{cid}", json=omitted, headers=token)
    assert kept.status_code == 200, kept.text
    assert kept.json()["access_token_lifetime"] == 600 and kept.json()["skip_consent"] is True
    for name, value in (("access_token_lifetime", 7 * 24 * 3600), ("skip_consent", False), ("trust_level", "admin")):
        r = await running.http.put(f"/register/{cid}", json={**current, name: value}, headers=token)
        assert name in assert_error(r, 400, "invalid_client_metadata")["error_description"]
    r = await running.http.put(f"/register/{cid}", json={**current, "scope": "openid system/*.rs"}, headers=token)
    assert "system/*.rs" in assert_error(r, 400, "invalid_client_metadata")["error_description"]
    final = await running.provider.clients.get(cid)
    assert (final.client_name, final.access_token_lifetime, final.skip_consent) == ("renamed", 600, True)


# --- grant-type rules and lifetimes ----------------------------------------------------------------

async def test_policy_lifetime_admin_cap_lowers_never_raises(running):
    """Attack: clients choosing 7-day access tokens; the admin's per-client value is only a cap."""
    long_cid, long_secret = await running.add_client(scope="api:read", access_token_lifetime=7 * 24 * 3600)
    assert (await client_token(running, long_cid, long_secret))["expires_in"] == 3600
    short_cid, short_secret = await running.add_client(scope="api:read", access_token_lifetime=120)
    assert (await client_token(running, short_cid, short_secret))["expires_in"] == 120


async def test_smart_backend_services_system_scopes_need_a_private_key(running):
    """Attack: a leaked client secret of an admin-made service reading every patient through system/."""
    cid, secret = await running.add_client(scope="system/*.rs api:read")
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                                headers=basic(cid, secret))
    assert "private_key_jwt" in assert_error(r, 400, "invalid_scope")["error_description"]
    # without an explicit scope the default is reduced to what the grant may carry
    assert (await client_token(running, cid, secret))["scope"] == "api:read"
    ok_cid, ok_secret = await running.add_client(scope="system/*.rs", system_scopes_with_secret=True)
    assert (await client_token(running, ok_cid, ok_secret, scope="system/*.rs"))["scope"] == "system/*.rs"


async def test_policy_client_credentials_never_carries_patient_or_user_scopes(running):
    """Attack: user-delegated scopes used with no user (patient/ with no patient, user/ with no user)."""
    cid, secret = await running.add_client(scope="patient/*.rs user/*.rs api:read")
    for scope in ("patient/*.rs", "user/*.rs"):
        r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                                    headers=basic(cid, secret))
        assert "client_credentials" in assert_error(r, 400, "invalid_scope")["error_description"]


async def test_smart_app_launch_system_scopes_never_through_authorization_code(running):
    """Attack: a user-facing app getting system/ (all patients) through the browser flow."""
    cid, secret = await make_rp(running, scope="openid system/*.rs", system_scopes_with_secret=True)
    user = await make_user(running)
    async with browser(running) as b:
        r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code",
                                              "scope": "openid system/*.rs", "state": "s",
                                              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                              "code_challenge_method": "S256"})
        assert r.status_code in (302, 303), r.text
        assert query_of(r.headers["location"])["error"] == "invalid_scope"
        flow = await run_flow(b, cid, secret, user, scope="openid")  # the same app without it works
        assert (await exchange(b, flow)).status_code == 200


async def test_rfc6749_6_refresh_narrows_a_grant_to_what_the_client_may_still_hold(running):
    """Attack: a grant made before the policy (user/ write scopes by a registrant) living on through refresh."""
    cid, secret = await make_rp(running, scope="openid offline_access user/*.cruds")
    await load_data(running)
    user = await practitioner(running)  # who may see every patient: else no user/ scope is given at all
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope="openid offline_access user/*.cruds",
                              aud="http://127.0.0.1:8000/fhir")
        assert "code" in flow.params, flow.params
        tokens = (await exchange(b, flow)).json()
        assert "user/*.cruds" in tokens["scope"].split()
        stored = await running.provider.clients.get(cid)  # as the migration finds a self-registered client
        await running.provider.clients.update(replace(stored, trust_level="registrant"))
        running.provider.cached_clients.invalidate(cid)
        r = await b.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                         headers=basic(cid, secret))
        assert r.status_code == 200, r.text
        assert "user/*.cruds" not in r.json()["scope"].split() and "openid" in r.json()["scope"].split()


async def test_policy_portal_gets_exactly_the_self_service_apis(running):
    """Attack: a developer-portal sign-up reaching APIs the operator did not open to self-service."""
    registry = running.provider.registry
    saved = registry.rules
    registry.rules = saved.with_self_service([SelfServiceApi("https://orders.example", ("orders:read",))])
    try:
        client, _ = await registry.create({"scope": "orders:read", "audiences": ["https://orders.example"],
                                           **CC_ONLY}, level="portal")
        assert client.trust_level == "portal" and client.audiences == ("https://orders.example",)
        bare, _ = await registry.create(CC_ONLY, level="portal")
        assert bare.scope == "orders:read"
        for metadata in ({"scope": "api:read"}, {"audiences": ["https://billing.example"]}, {"skip_consent": True}):
            with pytest.raises(InvalidClientMetadata):
                await registry.create({**metadata, **CC_ONLY}, level="portal")
    finally:
        registry.rules = saved


async def test_rfc7592_2_2_client_raised_to_admin_still_cannot_set_admin_only_metadata_itself(running):
    """Attack: an operator raises a self-registered app to --trust-level admin (to give it user/ scopes);
    the app then PUTs resource_server, audiences, skip_consent, system/ scopes or trust_level on itself
    with its registration access token. The operator's level is not the client's: it keeps what it was
    given and may narrow it, never widen it."""
    reg = (await _register(running, client_name="raised", scope="openid patient/*.rs", **APP)).json()
    cid, token = reg["client_id"], {"Authorization": f"Bearer {reg['registration_access_token']}"}
    await running.provider.registry.update(cid, {**{k: v for k, v in reg.items() if k != "trust_level"},
                                                 "scope": "openid user/*.rs", "trust_level": "admin"})
    current = (await running.http.get(f"/register/{cid}", headers=token)).json()
    assert current["trust_level"] == "admin" and current["scope"] == "openid user/*.rs"
    for name, value in (("resource_server", True), ("audiences", ["https://api.example"]), ("skip_consent", True),
                        ("access_token_lifetime", 7 * 24 * 3600), ("trust_level", "registrant"),
                        ("system_scopes_with_secret", True)):
        r = await running.http.put(f"/register/{cid}", json={**current, name: value}, headers=token)
        assert name in assert_error(r, 400, "invalid_client_metadata")["error_description"]
    for scope in ("openid user/*.cruds", "openid system/*.rs", "openid user/*.rs api:write"):
        r = await running.http.put(f"/register/{cid}", json={**current, "scope": scope}, headers=token)
        assert_error(r, 400, "invalid_client_metadata")
    r = await running.http.put(f"/register/{cid}", json={**current, "grant_types": ["client_credentials"],
                                                         "response_types": [], "redirect_uris": []}, headers=token)
    assert "client_credentials" in assert_error(r, 400, "invalid_client_metadata")["error_description"]
    narrowed = await running.http.put(f"/register/{cid}", json={**current, "scope": "openid user/Patient.rs",
                                                                "client_name": "renamed"}, headers=token)
    assert narrowed.status_code == 200, narrowed.text
    final = await running.provider.clients.get(cid)
    assert (final.trust_level, final.scope, final.resource_server, final.skip_consent, final.audiences) == (
        "admin", "openid user/Patient.rs", False, False, ())


async def test_policy_open_registration_is_throttled_per_address_registrants_are_not(tmp_path):
    """Attack: one anonymous party registering clients without end (each a database row of up to 64 KiB,
    each listed in the EHR launcher with an initiate_login_uri). Anonymous registrations are counted per
    address, then answered 429 with Retry-After; registrations with the initial access token are not."""
    from ostiary.config import ThrottleSettings

    registration = RegistrationSettings(open=True)
    throttle = ThrottleSettings(client_auth_failures=100_000, open_registrations=3)
    async for r in start_app(settings_for(f"sqlite:///{tmp_path / 'o.db'}", registration=registration,
                                          throttle=throttle)):
        for _ in range(3):
            assert (await _register(r, headers={}, **APP)).status_code == 201
        refused = await _register(r, headers={}, **APP)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0, refused.text
        assert refused.json()["error"] == "temporarily_unavailable"
        assert (await _register(r, **APP)).status_code == 201  # with the initial access token
