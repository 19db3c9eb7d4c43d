"""Property: no path, query or body makes the FHIR API answer 500, and every error is an OperationOutcome."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ostiary.fhir.access import TokenContext
from ostiary.fhir.app import make_fhir_app
from ostiary.fhir.sample import load_sample
from ostiary.fhir.store import FhirStore
from ostiary.store.sql.engine import make_engine, upgrade

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TOKENS = {"w": TokenContext("system/*.cruds"), "p": TokenContext("patient/*.cruds", patient="pat-001"),
          "q": TokenContext("patient/Observation.rs?category=laboratory&code=1,2", patient="pat-001")}
TYPES = ["Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance",
         "Practitioner", "Medication", "metadata", "_search", "", "..", "%00", "Patient%2F1"]
PARAMS = ["_id", "patient", "subject", "category", "code", "date", "name", "_count", "_offset", "birthdate",
          "gender", "status", "clinical-status", "code:text", "_format", "x"]
VALUES = ["pat-001", "Patient/pat-001", "ge2024", "le2024-02-30", "gt2024-01-01T10:00:00Z", "lt", "eq9999",
          "a,b", "|", "http://loinc.org|", "|8867-4", "-1", "999999999999", "0", "\x00", "é", "%", "%%"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
text = st.text(max_size=30)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(scalars,
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=10)
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda t, extra: {"resourceType": t, **extra}, st.sampled_from(TYPES), st.dictionaries(
        st.sampled_from(["id", "status", "subject", "code", "meta", "name", "category", "patient", "x"]),
        json_values, max_size=4)),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]]:
    loop = asyncio.new_event_loop()
    engine = make_engine(f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'f.db'}")

    async def authorize(token: str) -> TokenContext | None:
        return TOKENS.get(token)

    async def setup() -> FhirStore:
        await upgrade(engine)
        store = FhirStore(engine)
        await load_sample(store)
        return store

    store = loop.run_until_complete(setup())
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=make_fhir_app(store, authorize, "http://t/fhir")),
                             base_url="http://t")
    yield loop, http
    loop.run_until_complete(http.aclose())
    loop.run_until_complete(engine.dispose())
    loop.close()


@FUZZ
@given(method=st.sampled_from(METHODS), path=st.lists(st.one_of(st.sampled_from(TYPES), text), max_size=3),
       query=st.lists(st.tuples(st.one_of(st.sampled_from(PARAMS), text), st.one_of(st.sampled_from(VALUES), text)),
                      max_size=4),
       body=bodies, token=st.sampled_from([*TOKENS, "bad", ""]), raw=st.booleans())
def test_no_500(client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient], method: str, path: list[str],
                query: list[tuple[str, str]], body: object, token: str, raw: bool) -> None:
    loop, http = client
    url = "/" + "/".join(p.replace("?", "").replace("#", "") for p in path)
    content = body if isinstance(body, bytes) else httpx.Request("POST", "http://x", json=body).read()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers["Content-Type"] = "application/x-www-form-urlencoded" if raw else "application/fhir+json"
    try:
        request = http.build_request(method, url, params=query, content=content, headers=headers)
    except (httpx.InvalidURL, UnicodeEncodeError, ValueError):
        return
    response = loop.run_until_complete(http.send(request))
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and method != "HEAD":
        assert response.json()["resourceType"] == "OperationOutcome"
