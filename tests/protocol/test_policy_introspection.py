"""Authorization policy, introspection (RFC 7662 §2.1, §2.2, §4; SMART App Launch 2.2 §Token Introspection).

Attack stopped: any confidential client introspecting any other client's tokens, refresh tokens included."""

from __future__ import annotations

import logging
from dataclasses import replace

from tests.conftest import basic

from ._helpers import ISSUER, client_token
from ._oidc_flow import browser, exchange, make_rp, run_flow
from ._smart import load_data, practitioner

FHIR = ISSUER + "/fhir"


async def _introspect(running, token: str, cid: str, secret: str) -> dict:
    r = await running.http.post("/introspect", data={"token": token}, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _user_tokens(running, b, scope: str = "openid offline_access api:read", **extra: str):
    cid, secret = await make_rp(running, scope="api:read user/*.cruds")
    await load_data(running)  # fhirUser is an access fact that must resolve (issue 8)
    user = await practitioner(running, "prac-01")
    flow = await run_flow(b, cid, secret, user, scope=scope, **extra)
    r = await exchange(b, flow)
    assert r.status_code == 200, r.text
    return cid, secret, r.json()


async def test_rfc7662_2_1_client_cannot_introspect_another_clients_token(running, caplog):
    """Attack: a confidential client learning who holds which scopes from tokens it happened to see."""
    cid, secret = await running.add_client(scope="api:read")
    nosy, nosy_secret = await running.add_client(scope="api:read", client_name="nosy")
    token = (await client_token(running, cid, secret))["access_token"]
    with caplog.at_level(logging.INFO):
        assert await _introspect(running, token, nosy, nosy_secret) == {"active": False}
        assert await _introspect(running, token, nosy, nosy_secret) == {"active": False}
    warnings = [r for r in caplog.records if r.name == "ostiary.introspection" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "--resource-server" in warnings[0].getMessage()  # logged once per caller
    assert sum('"introspection_refused"' in r.getMessage() for r in caplog.records) == 2  # audited each time
    # the legitimate requests: the token's own client, and a resource server for its audience
    assert (await _introspect(running, token, cid, secret))["active"] is True
    rs, rs_secret = await running.add_client(scope="", resource_server=True, audiences=[ISSUER])
    assert (await _introspect(running, token, rs, rs_secret))["active"] is True


async def test_rfc7662_2_1_resource_server_sees_only_tokens_for_its_audiences(running):
    """Attack: one API (a resource server) reading tokens meant for another API."""
    cid, secret = await running.add_client(scope="api:read", audiences=["https://orders.example"])
    token = (await client_token(running, cid, secret))["access_token"]
    billing, billing_secret = await running.add_client(scope="", resource_server=True,
                                                       audiences=["https://billing.example"])
    assert await _introspect(running, token, billing, billing_secret) == {"active": False}
    orders, orders_secret = await running.add_client(scope="", resource_server=True,
                                                     audiences=["https://billing.example", "https://orders.example"])
    body = await _introspect(running, token, orders, orders_secret)
    assert body["active"] is True and body["aud"] == "https://orders.example"
    # a client with the audience but not marked a resource server by the operator is refused
    marked_not, marked_not_secret = await running.add_client(scope="", audiences=["https://orders.example"])
    assert await _introspect(running, token, marked_not, marked_not_secret) == {"active": False}


async def test_rfc7662_4_refresh_token_only_to_its_own_client_never_as_bearer(running):
    """Attack: a resource server (or any client) learning about, and accepting, another client's refresh token."""
    rs, rs_secret = await running.add_client(scope="", resource_server=True, audiences=[ISSUER])
    async with browser(running) as b:
        cid, secret, tokens = await _user_tokens(running, b)
        assert await _introspect(running, tokens["refresh_token"], rs, rs_secret) == {"active": False}
        own = await _introspect(running, tokens["refresh_token"], cid, secret)
        assert own["active"] is True and own["client_id"] == cid
        assert own["token_type"] != "Bearer"
        # rotated out: inactive even to its own client (RFC 9700 §4.14.2)
        r = await b.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                         headers=basic(cid, secret))
        assert r.status_code == 200, r.text
        assert await _introspect(running, tokens["refresh_token"], cid, secret) == {"active": False}
        assert (await _introspect(running, r.json()["refresh_token"], cid, secret))["active"] is True


async def test_rfc7662_2_2_smart_answer_members_without_sid_or_auth_time(running):
    """RFC 7662 members plus SMART's fhirUser and patient; never the login's sid or auth_time."""
    async with browser(running) as b:
        cid, secret, tokens = await _user_tokens(running, b, scope="openid fhirUser offline_access api:read")
        body = await _introspect(running, tokens["access_token"], cid, secret)
    assert body["active"] is True and body["token_type"] == "Bearer"
    for member in ("scope", "client_id", "sub", "iss", "aud", "iat", "exp", "jti"):
        assert member in body, member
    assert body["fhirUser"] == f"{FHIR}/Practitioner/prac-01"
    assert "sid" not in body and "auth_time" not in body


async def test_rfc7662_2_2_grant_made_before_the_policy_narrows_at_introspection(running):
    """Attack: a token of a self-registered app still presenting user/ write scopes after the upgrade."""
    async with browser(running) as b:
        cid, secret, tokens = await _user_tokens(running, b, scope="openid user/*.cruds api:read", aud=FHIR)
        assert "user/*.cruds" in (await _introspect(running, tokens["access_token"], cid, secret))["scope"]
        stored = await running.provider.clients.get(cid)
        await running.provider.clients.update(replace(stored, trust_level="registrant"))
        running.provider.cached_clients.invalidate(cid)
        body = await _introspect(running, tokens["access_token"], cid, secret)
    assert body["active"] is True and body["scope"].split() == ["openid", "api:read"]


async def test_rfc7662_4_resource_server_audience_matches_exactly_not_by_slash_case_or_list_shape(running):
    """Attack: an API registered for https://orders.example/ or HTTPS://ORDERS.EXAMPLE reading tokens for
    https://orders.example (and a token with a list aud naming several APIs, one of them the caller's)."""
    cid, secret = await running.add_client(scope="api:read", audiences=["https://orders.example",
                                                                        "https://billing.example"])
    single = (await client_token(running, cid, secret, resource="https://orders.example"))["access_token"]
    for near in ("https://orders.example/", "HTTPS://ORDERS.EXAMPLE", "https://orders.example.", "https://orders.example:443"):
        rs, rs_secret = await running.add_client(scope="", resource_server=True, audiences=[near])
        assert await _introspect(running, single, rs, rs_secret) == {"active": False}, near
    both = await running.http.post("/token", data={"grant_type": "client_credentials", "resource": [
        "https://orders.example", "https://billing.example"]}, headers=basic(cid, secret))
    assert both.status_code == 200, both.text
    billing, billing_secret = await running.add_client(scope="", resource_server=True,
                                                       audiences=["https://billing.example"])
    body = await _introspect(running, both.json()["access_token"], billing, billing_secret)
    assert body["active"] is True and set(body["aud"]) == {"https://orders.example", "https://billing.example"}
