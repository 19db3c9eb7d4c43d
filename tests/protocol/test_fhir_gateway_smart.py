"""The FHIR gateway for SMART apps (issue 8, items 6 and 7): user/ scopes enforced with the user's patients
from a signed claim or introspection (never a list in the JWT), SMART discovery pointing at the issuer,
and paging links that stay on the gateway. Same real upstream and test issuer as test_fhir_gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ostiary.client.auth_methods import ClientSecretBasic
from ostiary.client.secret import Secret
from ostiary.fhir.gateway import make_gateway_app, verifier_authorizer
from ostiary.fhir.store import FhirStore
from ostiary.keys import SigningKey
from ostiary.resource.introspection import Introspection
from ostiary.resource.verifier import TokenVerifier
from tests.conftest import basic
from tests.protocol._oidc_flow import browser, make_user
from tests.protocol._smart import load_data, smart_app, smart_tokens, with_access
from tests.protocol.test_fhir_gateway import UPSTREAM_TOKEN, issuer, key, upstream
from tests.unit._guard_helpers import AUDIENCE, IssuerServer, access_token

__all__ = ["issuer", "key", "upstream"]  # the fixtures, shared with test_fhir_gateway

GATEWAY = "http://gateway.test"


@pytest.fixture(scope="module")
async def gateway(upstream: str, issuer: IssuerServer) -> AsyncIterator[httpx.AsyncClient]:
    introspection = Introspection(ClientSecretBasic("gateway", Secret("gateway-secret")))
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, introspection=introspection)
    app = make_gateway_app(upstream, verifier_authorizer(verifier), upstream_token=UPSTREAM_TOKEN, realm=GATEWAY,
                           issuer=issuer.issuer, public_url=GATEWAY)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=GATEWAY + "/"
    ) as http:
        yield http
    await verifier.aclose()


def token(key: SigningKey, issuer: IssuerServer, scope: str, *, facts: dict[str, Any] | None = None,
          **claims: Any) -> dict[str, str]:
    """A user token; `facts` is what this issuer's introspection says about the user's patients."""
    value = access_token(key, issuer.issuer, scope=scope, **claims)
    issuer.introspection[value] = {"active": True, "iss": issuer.issuer, "aud": AUDIENCE, "scope": scope,
                                   "sub": "user-1", **({"patient_access": facts} if facts is not None else {})}
    return {"Authorization": f"Bearer {value}"}


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


# --- item 6: user/ scopes in the gateway ---------------------------------------------------------------

async def test_gateway_user_scope_without_known_patients_is_refused(gateway, key, issuer) -> None:
    # the attack: a patient user with user/*.rs read every patient; with no facts, nothing passes
    auth = token(key, issuer, "user/*.rs")
    assert (await gateway.get("Patient/pat-002", headers=auth)).status_code == 403
    assert (await gateway.get("Observation?patient=pat-002", headers=auth)).status_code == 403


async def test_gateway_user_scope_patient_user_from_introspection(gateway, key, issuer) -> None:
    auth = token(key, issuer, "user/*.rs", facts={"patients": ["pat-001"]})
    r = await gateway.get("Patient/pat-001", headers=auth)
    assert r.status_code == 200, r.text
    assert (await gateway.get("Patient/pat-002", headers=auth)).status_code == 403  # instance: the fetched one
    assert ids(await gateway.get("Observation?patient=pat-001", headers=auth))
    # a restricted user's type-level search must name an allowed patient: the upstream's results are not filtered
    assert (await gateway.get("Observation?patient=pat-002", headers=auth)).status_code == 403
    assert (await gateway.get("Observation", headers=auth)).status_code == 403
    assert (await gateway.get("Observation?patient=pat-001,pat-002", headers=auth)).status_code == 403
    assert ids(await gateway.get("Patient?_id=pat-001", headers=auth)) == {"pat-001"}
    assert (await gateway.get("Practitioner", headers=auth)).status_code == 200


async def test_gateway_user_scope_signed_all_claim_is_an_unrestricted_practitioner(gateway, key, issuer) -> None:
    auth = token(key, issuer, "user/*.rs", patient_access={"all": True})
    assert (await gateway.get("Patient/pat-002", headers=auth)).status_code == 200
    assert len(ids(await gateway.get("Patient?_count=50", headers=auth))) == 30


async def test_gateway_user_scope_list_of_patients_in_the_jwt_is_ignored(gateway, key, issuer) -> None:
    # never a list of patient ids in the JWT: such a claim grants nothing (introspection decides)
    auth = token(key, issuer, "user/*.rs", facts={"patients": ["pat-001"]}, patient_access={"patients": ["pat-002"]})
    assert (await gateway.get("Patient/pat-002", headers=auth)).status_code == 403
    assert (await gateway.get("Patient/pat-001", headers=auth)).status_code == 200


async def test_gateway_user_write_stays_with_the_users_patients(gateway, key, issuer) -> None:
    auth = token(key, issuer, "user/Observation.cruds", facts={"patients": ["pat-003"]})
    new = {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
           "subject": {"reference": "Patient/pat-004"}, "performer": [{"reference": "Patient/pat-003"}]}
    assert (await gateway.post("Observation", json=new, headers=auth)).status_code == 403
    own = {**new, "subject": {"reference": "Patient/pat-003"}}
    assert (await gateway.post("Observation", json=own, headers=auth)).status_code == 201


async def test_smart_2_2_related_person_sees_only_the_referenced_patient_through_the_gateway(
        running, gateway, key, issuer) -> None:
    # the attack: a RelatedPerson user's user/*.rs token read another patient's chart through the gateway.
    # The facts come from Ostiary's own introspection for a user given them as `ostiary user access` would.
    await load_data(running)
    await FhirStore(running.provider.engine).insert_missing([
        {"resourceType": "RelatedPerson", "id": "rp-gw", "patient": {"reference": "Patient/pat-003"}}])
    user = await with_access(running, await make_user(running), "RelatedPerson/rp-gw")
    app = await smart_app(running)
    async with browser(running) as b:
        _, body, _ = await smart_tokens(running, b, user, app=app, scope="openid user/*.rs")
    answer = (await running.http.post("/introspect", data={"token": body["access_token"]}, headers=basic(*app))).json()
    assert answer["active"] is True
    auth = token(key, issuer, "user/*.rs", facts=answer["patient_access"])
    assert (await gateway.get("Patient/pat-003", headers=auth)).status_code == 200
    assert ids(await gateway.get("Observation?patient=pat-003", headers=auth))
    assert (await gateway.get("Patient/pat-004", headers=auth)).status_code == 403
    assert (await gateway.get("Observation?patient=pat-004", headers=auth)).status_code == 403
    assert (await gateway.get("Observation", headers=auth)).status_code == 403


# --- item 7: SMART discovery and paging ------------------------------------------------------------------

async def test_gateway_serves_the_issuers_smart_configuration(gateway, issuer) -> None:
    r = await gateway.get(".well-known/smart-configuration")
    assert r.status_code == 200 and r.json()["issuer"] == issuer.issuer
    assert r.json()["authorization_endpoint"] == f"{issuer.issuer}/authorize"


async def test_gateway_metadata_names_the_issuer_in_oauth_uris(gateway, issuer) -> None:
    r = await gateway.get("metadata")
    assert r.status_code == 200, r.text
    security = r.json()["rest"][0]["security"]
    uris = [e for e in security["extension"] if e["url"].endswith("/oauth-uris")]
    assert len(uris) == 1
    values = {e["url"]: e["valueUri"] for e in uris[0]["extension"]}
    assert values == {"authorize": f"{issuer.issuer}/authorize", "token": f"{issuer.issuer}/token"}


async def test_gateway_paging_links_point_at_the_gateway(gateway, key, issuer, upstream) -> None:
    auth = token(key, issuer, "system/Patient.rs")
    r = await gateway.get("Patient?_count=10", headers=auth)
    assert r.status_code == 200, r.text
    links = {link["relation"]: link["url"] for link in r.json()["link"]}
    assert links["next"].startswith(GATEWAY + "/Patient?") and upstream not in r.text
    page2 = await gateway.get(links["next"].removeprefix(GATEWAY + "/"), headers=auth)
    assert len(ids(page2)) == 10 and not ids(page2) & ids(r)
