"""Property over the whole route table: no request gets a 500, nor a 5xx the endpoint does not document
(DESIGN: "bad input always gets a clear, standard error"). Once per database: NUL reaches PostgreSQL only.

The known triggers of issue 13 are pieces of the strategies and each has its own deterministic test.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from ostiary.config import KeySettings
from ostiary.smart.launch import LaunchContext
from ostiary.web.app import make_app
from tests.conftest import ISSUER, basic, settings_for

from .test_fuzz import authorizations, bodies, content_types, json_values

# The 5xx an endpoint may answer by design (docs/security.md): everything else is a bug.
DOCUMENTED_5XX: dict[str, frozenset[int]] = {"/healthz": frozenset({503})}
INITIAL = "initial-token-for-tests"
FHIR_TYPES = ("Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance",
              "Practitioner", "metadata", "_search", "Patient/_search", "Observation/_history")
TRIGGERS = ("http://[::1", "gt9999-12-31T23:59:59.9999999Z", "9999", "le0001-01-01T00:00:00+14:00", "\x00",
            "a\x00b", "Patient/\x00", "http://localhost:9649\\@127.0.0.1/cb", "%00", "\ud800", "x" * 300)
PARAMS = ("client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "code_challenge",
          "code_challenge_method", "launch", "aud", "patient", "subject", "date", "birthdate", "name", "_id",
          "code", "_count", "_include", "_revinclude", "category", "id_token_hint", "post_logout_redirect_uri",
          "iss", "launch_uri", "token", "grant_type", "logo_uri", "allowed_cors_origins")

FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz(database_url: str) -> Any:
    app = make_app(settings_for(database_url, keys=KeySettings(generate=("ES256", "RS256"))))
    with TestClient(app, base_url=ISSUER, raise_server_exceptions=False) as client:
        assert client.portal is not None
        # an operator-made backend client (docs/security.md, grant-type rules), for a FHIR token
        made, issued = client.portal.call(app.state.provider.registry.create, {
            "grant_types": ["client_credentials"], "scope": "system/*.rs", "system_scopes_with_secret": True})
        reg = {"client_id": made.client_id, "client_secret": issued.client_secret}
        token = client.post("/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                            headers=basic(reg["client_id"], reg["client_secret"])).json()["access_token"]
        launch = client.portal.call(app.state.provider.launches.create, LaunchContext(patient="p1"))
        yield client, reg, token, launch


def _templates(app: Any) -> list[str]:
    out = []
    for route in app.routes:
        if isinstance(route, Route):
            out.append(route.path)
        elif isinstance(route, Mount) and route.path != "/static":
            out.extend(f"{route.path}/{t}" for t in FHIR_TYPES)
            out.append(route.path + "/{type}/{id}")
    return sorted(out)


def _quote(value: str) -> str:
    return quote(value, safe="", errors="surrogatepass")


@st.composite
def requests(draw: st.DrawFn, client: TestClient, reg: dict[str, Any], token: str, launch: str) -> tuple[Any, ...]:
    segment = st.one_of(st.sampled_from(("x", "p1", "launch:" + launch, reg["client_id"], *TRIGGERS)),
                        st.text(max_size=20))
    path = draw(st.sampled_from(_templates(client.app)))
    template = path
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + _quote(draw(segment)) + path[end + 1:]
    value = st.one_of(st.sampled_from((*TRIGGERS, reg["client_id"], launch, "openid", "code", "form_post")),
                      st.text(max_size=30))
    query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in draw(st.lists(
        st.tuples(st.one_of(st.sampled_from(PARAMS), st.text(max_size=8)), value), max_size=5)))
    body = draw(st.one_of(bodies, json_values.map(lambda v: repr(v).encode()), st.sampled_from((
        b'{"logo_uri": "http://[::1", "grant_types": ["client_credentials"]}',
        b'{"allowed_cors_origins": ["http://[::1"], "grant_types": ["client_credentials"]}',
        b'{"client_name": "a\\u0000b", "grant_types": ["client_credentials"]}',
        b'{"resourceType": "Patient", "link": [{"other": {"reference": "Patient/\\u0000"}}]}',
        b"username=a%00&password=b", b"grant_type=client_credentials&scope=%00"))))
    headers: dict[str, Any] = {}
    content_type = draw(content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type
    auth = draw(st.one_of(authorizations(reg["client_id"], reg["client_secret"]),
                          st.sampled_from((f"Bearer {token}".encode(), f"Bearer {INITIAL}".encode()))))
    if auth is not None:
        headers["Authorization"] = auth
    method = draw(st.sampled_from(("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")))
    return template, method, f"{path}?{query}" if query else path, body, headers


def known_triggers(reg: dict[str, Any], token: str, launch: str) -> st.SearchStrategy[tuple[Any, ...]]:
    """Issue 13's triggers, each a request (template, method, url, body, headers) hypothesis may vary."""
    bearer = {"Authorization": f"Bearer {token}"}
    initial = {"Authorization": f"Bearer {INITIAL}", "Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded", **basic(reg["client_id"], reg["client_secret"])}
    cid = reg["client_id"]
    return st.sampled_from([
        ("/authorize", "GET", f"/authorize?client_id={cid}&redirect_uri=http://[::1&response_type=code", b"", {}),
        ("/register", "POST", "/register", b'{"logo_uri": "http://[::1"}', initial),
        ("/register", "POST", "/register", b'{"allowed_cors_origins": ["http://[::1"]}', initial),
        ("/register", "POST", "/register", b'{"client_name": "a\\u0000", "contacts": ["\\u0000"]}', initial),
        ("/fhir/Observation", "GET", "/fhir/Observation?date=gt9999-12-31T23:59:59.9999999Z", b"", bearer),
        ("/fhir/Observation", "GET", "/fhir/Observation?patient=%00", b"", bearer),
        ("/fhir/Observation", "GET", "/fhir/Observation?subject=Patient/%00", b"", bearer),
        ("/interaction/{interaction_id}", "GET", f"/interaction/launch:{launch}", b"", {}),
        ("/interaction/{interaction_id}/login", "POST", f"/interaction/launch:{launch}/login", b"username=a", form),
        ("/token", "POST", "/token", b"grant_type=client_credentials&scope=a%00", form),
    ]).flatmap(lambda t: st.tuples(*map(st.just, t[:2]), st.sampled_from(("", "&x=%00", "&date=le9999")).map(
        lambda extra: t[2] + (extra if "?" in t[2] else "")), *map(st.just, t[3:])))


@FUZZ
@given(data=st.data())
def test_every_route_answers_no_undocumented_5xx(fuzz, data):
    client, reg, token, launch = fuzz
    template, method, url, body, headers = data.draw(st.one_of(known_triggers(reg, token, launch),
                                                               requests(client, reg, token, launch)))
    r = client.request(method, url, content=body, headers=headers)
    if r.status_code >= 500:
        assert r.status_code in DOCUMENTED_5XX.get(template, ()), (method, url, r.status_code, r.text[:300])
    assert "Traceback" not in r.text


# --- the known triggers, one by one -----------------------------------------------------------------------

def test_rfc6749_4_1_2_1_unclosed_ipv6_redirect_uri_is_an_error_page(fuzz):
    client, reg, _, _ = fuzz
    r = client.get("/authorize", params={"client_id": reg["client_id"], "redirect_uri": "http://[::1",
                                         "response_type": "code"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("metadata", [{"logo_uri": "http://[::1"}, {"allowed_cors_origins": ["http://[::1"]},
                                      {"client_uri": "https://[::1"}, {"client_name": "a\x00b"}])
def test_rfc7591_3_2_2_malformed_url_or_nul_in_metadata_is_invalid_client_metadata(fuzz, metadata):
    client = fuzz[0]
    r = client.post("/register", json={"grant_types": ["client_credentials"], **metadata},
                    headers={"Authorization": f"Bearer {INITIAL}"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", r.text


def test_fhir_search_date_at_the_end_of_year_9999_is_searchable(fuzz):
    client, _, token, _ = fuzz
    for value in ("gt9999-12-31T23:59:59.9999999Z", "le9999", "eq9999-12"):
        r = client.get("/fhir/Observation", params={"date": value}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["resourceType"] == "Bundle", (value, r.text[:200])
    r = client.get("/fhir/Observation", params={"date": "gt10000-01-01"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def test_interaction_id_equal_to_a_launch_value_is_an_expired_interaction_page(fuzz):
    client, _, _, launch = fuzz
    for value in ("launch:" + launch, launch):
        r = client.get(f"/interaction/{_quote(value)}")
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), value


@pytest.mark.parametrize("method, url, body, content_type", [
    ("GET", "/fhir/Observation?patient=%00", None, None),
    ("GET", "/authorize?client_id=%00", None, None),
    ("GET", "/fhir/Patient/a%00", None, None),
    ("POST", "/token", b"grant_type=client_credentials&client_id=a%00", "application/x-www-form-urlencoded"),
    ("POST", "/fhir/Patient", b'{"resourceType": "Patient", "id": "a\\u0000"}', "application/fhir+json"),
])
def test_nul_characters_are_refused_with_400_before_the_database(fuzz, method, url, body, content_type):
    client, _, token, _ = fuzz
    headers = {"Authorization": f"Bearer {token}", **({"Content-Type": content_type} if content_type else {})}
    r = client.request(method, url, content=body, headers=headers)
    assert r.status_code == 400, (url, r.status_code, r.text[:200])
    if url.startswith("/fhir"):
        assert r.json()["resourceType"] == "OperationOutcome"


# --- the FHIR gateway: the same property, with an upstream that answers, fails or times out ------------------

GATEWAY_5XX = frozenset({502, 504})  # docs/security.md: the upstream cannot be reached, or did not answer in time
UPSTREAM_ANSWERS = (
    {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "match"}},
        {"resource": {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p2"}}},
        {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}}]},
    {"resourceType": "Patient", "id": "p1", "link": [{"other": {"reference": "Patient/\u0000"}}]},
    {"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p1"}},
    {"resourceType": "Bundle", "entry": "not a list"}, [], "text", None,
)


@pytest.fixture(scope="module")
def gateway() -> Any:
    import httpx

    from ostiary.fhir.access import TokenContext
    from ostiary.fhir.gateway import make_gateway_app

    state: dict[str, Any] = {"answer": UPSTREAM_ANSWERS[0]}

    def upstream(request: httpx.Request) -> httpx.Response:
        answer = state["answer"]
        if answer == "connect":
            raise httpx.ConnectError("refused", request=request)
        if answer == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if answer == "garbage":
            return httpx.Response(200, content=b"\xff{not json", headers={"content-type": "application/fhir+json"})
        return httpx.Response(200, json=answer, headers={"content-type": "application/fhir+json"})

    async def authorize(token: str) -> TokenContext | None:
        return {"sys": TokenContext("system/*.cruds"), "pat": TokenContext("patient/*.rs", patient="p1")}.get(token)

    app = make_gateway_app("https://fhir.example/r4", authorize, transport=httpx.MockTransport(upstream))
    with TestClient(app, base_url="http://gateway.example", raise_server_exceptions=False) as client:
        yield client, state


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_fhir_gateway_answers_no_undocumented_5xx(gateway, data):
    client, state = gateway
    state["answer"] = data.draw(st.sampled_from((*UPSTREAM_ANSWERS, "connect", "timeout", "garbage")))
    segment = st.one_of(st.sampled_from(("p1", "o1", "..", "%2e%2e", *TRIGGERS)), st.text(max_size=12))
    parts = data.draw(st.lists(st.one_of(st.sampled_from(FHIR_TYPES), segment.map(_quote)), min_size=1, max_size=3))
    query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in data.draw(st.lists(st.tuples(
        st.sampled_from(PARAMS), st.one_of(st.sampled_from(TRIGGERS), st.text(max_size=20))), max_size=4)))
    path = "/" + "/".join(parts)
    headers = {"Authorization": "Bearer " + data.draw(st.sampled_from(("sys", "pat", "nope")))}
    content_type = data.draw(content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type
    method = data.draw(st.sampled_from(("GET", "POST", "PUT", "DELETE", "PATCH")))
    r = client.request(method, f"{path}?{query}" if query else path, content=data.draw(bodies), headers=headers)
    assert r.status_code < 500 or r.status_code in GATEWAY_5XX, (method, path, query, r.status_code, r.text[:300])
