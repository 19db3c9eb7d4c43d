"""The FHIR gateway in front of a real upstream (the built-in FHIR API under uvicorn on 127.0.0.1),
with tokens signed by a test issuer whose keys are served as a JWKS."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from ostiary.fhir.access import TokenContext
from ostiary.fhir.app import make_fhir_app
from ostiary.fhir.gateway import make_gateway_app, verifier_authorizer
from ostiary.fhir.sample import load_sample
from ostiary.fhir.store import FhirStore
from ostiary.keys import SigningKey
from ostiary.resource.verifier import TokenVerifier
from ostiary.store.sql.engine import make_engine, upgrade
from tests.unit._guard_helpers import AUDIENCE, IssuerServer, access_token, free_port

UPSTREAM_TOKEN = "upstream-credential"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
GATEWAY = "http://gateway.test"


def upstream_app(db: Path, base: str) -> Starlette:
    state: dict[str, Any] = {}

    async def trust(token: str) -> TokenContext | None:  # the upstream trusts the gateway's credential only
        return TokenContext("system/*.cruds") if token == UPSTREAM_TOKEN else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(f"sqlite:///{db}")
        await upgrade(engine)
        await load_sample(state["store"].bind(engine))
        yield
        await engine.dispose()

    class LateStore(FhirStore):
        def __init__(self) -> None:
            pass

        def bind(self, engine: Any) -> FhirStore:
            self.engine = engine
            return self

    state["store"] = LateStore()
    return Starlette(routes=[Mount("/fhir", make_fhir_app(state["store"], trust, base))], lifespan=lifespan)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    config = uvicorn.Config(upstream_app(tmp_path_factory.mktemp("up") / "fhir.db", base), host="127.0.0.1",
                            port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield base
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def issuer(key: SigningKey) -> Iterator[IssuerServer]:
    with IssuerServer([key]) as server:
        yield server


@pytest.fixture(scope="module")
async def gateway(upstream: str, issuer: IssuerServer) -> AsyncIterator[httpx.AsyncClient]:
    verifier = TokenVerifier(issuer.issuer, AUDIENCE)
    app = make_gateway_app(upstream, verifier_authorizer(verifier), upstream_token=UPSTREAM_TOKEN, realm=GATEWAY)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=GATEWAY
    ) as http:
        yield http
    await verifier.aclose()


def bearer(key: SigningKey, issuer: IssuerServer, scope: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(key, issuer.issuer, scope=scope, **claims)}"}


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


async def test_metadata_passes_without_a_token(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/metadata")
    assert response.status_code == 200 and response.json()["resourceType"] == "CapabilityStatement"


async def test_tokens_are_verified(gateway: httpx.AsyncClient, issuer: IssuerServer) -> None:
    response = await gateway.get("/Patient/pat-001")
    outcome(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer ")
    stranger = SigningKey.generate("ES256")
    response = await gateway.get("/Patient/pat-001", headers=bearer(stranger, issuer, "system/*.rs"))
    outcome(response, 401)
    assert "invalid_token" in response.headers["www-authenticate"]


@pytest.mark.parametrize(("scope", "path", "status"), [
    ("system/*.rs", "/Patient/pat-002", 200), ("patient/*.rs", "/Patient/pat-001", 200),
    ("patient/*.rs", "/Patient/pat-002", 403), ("patient/*.rs", "/Observation/obs-001-1-v1", 200),
    ("patient/*.rs", "/Observation/obs-002-1-v1", 403), ("patient/*.rs", "/Observation/nope", 404),
    ("patient/Patient.rs", "/Observation/obs-001-1-v1", 403),
    (f"patient/Observation.rs?category={LAB}", "/Observation/obs-001-1-l1", 200),
    (f"patient/Observation.rs?category={LAB}", "/Observation/obs-001-1-v1", 403),
])
async def test_reads_are_checked_against_the_upstream_resource(
    gateway: httpx.AsyncClient, key: SigningKey, issuer: IssuerServer, scope: str, path: str, status: int
) -> None:
    response = await gateway.get(path, headers=bearer(key, issuer, scope, patient="pat-001"))
    if status == 200:
        assert response.status_code == 200, response.text
        assert path.endswith(response.json()["id"])
    else:
        outcome(response, status)


async def test_searches_are_narrowed(gateway: httpx.AsyncClient, key: SigningKey, issuer: IssuerServer) -> None:
    headers = bearer(key, issuer, "patient/*.rs", patient="pat-001")
    bundle = (await gateway.get("/Observation?_count=200", headers=headers)).json()
    assert bundle["total"] > 0
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/pat-001"}
    assert (await gateway.get("/Patient", headers=headers)).json()["total"] == 1
    assert (await gateway.get("/Observation?patient=pat-002", headers=headers)).json()["total"] == 0
    posted = await gateway.post("/Observation/_search", data={"_count": "200"}, headers=headers)
    assert posted.json()["total"] == bundle["total"]
    labs = bearer(key, issuer, f"patient/Observation.rs?category={LAB}", patient="pat-001")
    entries = (await gateway.get("/Observation?_count=200", headers=labs)).json()["entry"]
    assert {e["resource"]["category"][0]["coding"][0]["code"] for e in entries} == {"laboratory"}
    outcome(await gateway.get("/Observation?_include=Observation:patient", headers=headers), 403)
    outcome(await gateway.get("/Practitioner", headers=headers), 403)
    everything = (await gateway.get("/Observation?_count=200", headers=bearer(key, issuer, "system/*.rs"))).json()
    assert everything["total"] > bundle["total"]


def observation(patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": f"Patient/{patient}"}}


async def test_writes_are_checked(gateway: httpx.AsyncClient, key: SigningKey, issuer: IssuerServer) -> None:
    writer = bearer(key, issuer, "patient/*.cruds", patient="pat-001")
    outcome(await gateway.post("/Observation", json=observation("pat-002"), headers=writer), 403)
    outcome(await gateway.post("/Observation", json=observation("pat-001"),
                               headers=bearer(key, issuer, "patient/*.rs", patient="pat-001")), 403)
    created = await gateway.post("/Observation", json=observation("pat-001"), headers=writer)
    assert created.status_code == 201, created.text
    resource = created.json()
    moved = {**resource, "subject": {"reference": "Patient/pat-002"}}
    outcome(await gateway.put(f"/Observation/{resource['id']}", json=moved, headers=writer), 403)
    amended = {**resource, "status": "amended"}
    updated = await gateway.put(f"/Observation/{resource['id']}", json=amended, headers=writer)
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    other = (await gateway.get("/Observation/obs-002-1-v1", headers=bearer(key, issuer, "system/*.rs"))).json()
    outcome(await gateway.put("/Observation/obs-002-1-v1", json=other, headers=writer), 403)
    outcome(await gateway.delete(f"/Observation/{resource['id']}", headers=writer), 405)  # passed; upstream says 405
    outcome(await gateway.post("/Observation", content=b"{", headers=writer), 400)
    outcome(await gateway.get("/", headers=writer), 403)
    outcome(await gateway.get("/Observation/a/_history/1", headers=writer), 403)


async def test_rfc7662_4_fhir_gateway_takes_only_introspected_access_tokens_meant_for_it(
        upstream: str, issuer: IssuerServer) -> None:
    """Attack: a refresh token, or a token for another API, accepted by the gateway as an access token."""
    from ostiary.client import ClientSecretBasic, Secret
    from ostiary.resource import Introspection

    base = {"active": True, "iss": issuer.issuer, "sub": "svc", "client_id": "svc", "scope": "system/*.rs",
            "exp": int(time.time() + 300)}
    issuer.introspection.update({
        "gw-access": {**base, "aud": AUDIENCE, "token_type": "Bearer"},
        "gw-refresh": {**base, "aud": AUDIENCE, "token_type": "refresh_token"},
        "gw-no-aud": base,
        "gw-other-api": {**base, "aud": "https://other.example"},
    })
    verifier = TokenVerifier(issuer.issuer, AUDIENCE,
                             introspection=Introspection(ClientSecretBasic("gateway", Secret("its-secret"))))
    app = make_gateway_app(upstream, verifier_authorizer(verifier), upstream_token=UPSTREAM_TOKEN, realm=GATEWAY)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=GATEWAY
    ) as http:
        for token, status in (("gw-access", 200), ("gw-refresh", 401), ("gw-no-aud", 401), ("gw-other-api", 401)):
            response = await http.get("/Patient/pat-001", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == status, (token, response.text)
    await verifier.aclose()
