"""The FHIR gateway forwards only what it checked and returns only what it checked (issue 13 item 9,
SECURITY-CHECKLIST "Proxies and gateways"). The upstream here is a scripted mock that records every
request it gets, so each test can show what crossed and answer as a careless or hostile server would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from ostiary.fhir.access import TokenContext
from ostiary.fhir.gateway import make_gateway_app

UPSTREAM = "https://fhir.internal.example/r4"
CREDENTIAL = "upstream-credential"
TOKENS = {"pat1": TokenContext("patient/*.cruds", patient="pat-001", client_id="app"),
          "system": TokenContext("system/*.rs", client_id="backend")}
PATIENT = {"Authorization": "Bearer pat1"}
FHIR = {"Content-Type": "application/fhir+json"}


class Upstream:
    """Answers with ``answer(request)``; keeps every request it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], httpx.Response] = lambda r: json_answer(bundle())

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def json_answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body),
                          headers={"Content-Type": "application/fhir+json", **headers})


def observation(patient: str, id_: str = "o1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": id_, "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": f"Patient/{patient}"}}


def bundle(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": list(entries)}


def match(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "search": {"mode": "match"}}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    yield Upstream()


@pytest.fixture
def app(upstream: Upstream) -> Starlette:
    async def authorize(token: str) -> TokenContext | None:
        return TOKENS.get(token)

    return make_gateway_app(UPSTREAM, authorize, upstream_token=CREDENTIAL, max_response_bytes=4000,
                            transport=httpx.MockTransport(upstream.handler))


@pytest.fixture
async def gateway(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as http:
        yield http


async def raw_get(app: Starlette, path: str) -> int:
    """GET exactly ``path`` (clients such as httpx remove dot segments before sending; curl --path-as-is does not)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"gateway.test"), (b"authorization", b"Bearer pat1")],
             "client": ("127.0.0.1", 1), "server": ("gateway.test", 80)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def outcome(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["diagnostics"])


# --- what goes upstream --------------------------------------------------------------------------


async def test_gateway_forwards_only_allow_listed_headers_and_sets_its_own(gateway, upstream) -> None:
    response = await gateway.get("/Observation", headers={
        **PATIENT, "Cookie": "session=secret", "X-Forwarded-For": "10.0.0.1", "Forwarded": "for=10.0.0.1",
        "X-Custom": "x", "Accept": "application/fhir+xml", "If-None-Match": 'W/"3"', "X-Request-Id": "r-1",
        "Prefer": "return=representation, handling=lenient, respond-async"})
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1].headers
    for name in ("cookie", "x-forwarded-for", "forwarded", "x-custom"):
        assert name not in sent, name
    assert sent["authorization"] == f"Bearer {CREDENTIAL}"  # the caller's token never crosses
    assert sent["accept"] == "application/fhir+json"  # answers the gateway can check
    assert sent["prefer"] == "return=representation, handling=strict"
    assert sent["if-none-match"] == 'W/"3"' and sent["x-request-id"] == "r-1"


@pytest.mark.parametrize("value", ["return=evil", "handling=lenient", "respond-async", ""])
async def test_prefer_handling_strict_is_always_set_and_unknown_return_values_dropped(gateway, upstream, value):
    await gateway.get("/Observation", headers={**PATIENT, "Prefer": value})
    assert upstream.requests[-1].headers["prefer"] == "handling=strict"


async def test_get_search_parameters_are_parsed_once_and_re_encoded(gateway, upstream) -> None:
    await gateway.get("/Observation?code=a%20b&code=c&_count=5", headers=PATIENT)
    sent = upstream.requests[-1].url
    assert sent.path == "/r4/Observation"
    assert parse_qsl(sent.query.decode()) == [("code", "a b"), ("code", "c"), ("_count", "5"), ("patient", "pat-001")]


async def test_post_search_body_is_re_sent_as_utf8_form_data_with_the_url_parameters(gateway, upstream) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    response = await gateway.post("/Observation/_search?status=final", content="code=%C3%A9t%C3%A9&_count=5",
                                  headers={**PATIENT, **form})
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1]
    assert sent.method == "POST" and sent.url.path == "/r4/Observation/_search" and not sent.url.query
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(sent.content.decode()) == [("status", "final"), ("code", "été"), ("_count", "5"),
                                                ("patient", "pat-001")]


@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("application/json", b'{"code": "x"}', 415),
    ("text/plain", b"code=x", 415),
    ("application/x-www-form-urlencoded; charset=iso-8859-1", b"code=\xe9", 415),
    ("application/x-www-form-urlencoded", b"code=\xff\xfe", 400),
    ("application/x-www-form-urlencoded", b"code=%FF", 400),
])
async def test_post_search_bodies_other_than_utf8_form_data_are_refused(gateway, upstream, content_type, body, status):
    response = await gateway.post("/Observation/_search", content=body,
                                  headers={**PATIENT, "Content-Type": content_type})
    outcome(response, status)
    assert upstream.requests == []


async def test_post_search_cannot_smuggle_include_through_the_url(gateway, upstream) -> None:
    response = await gateway.post("/Observation/_search?_include=Observation:patient", data={"_count": "5"},
                                  headers=PATIENT)
    outcome(response, 403)
    assert upstream.requests == []


@pytest.mark.parametrize("path", ["/Patient/..", "/Patient/.", "/Patient/...", "/Observation/../Patient/x"])
async def test_dot_segment_ids_are_refused_before_the_upstream(app, gateway, upstream, path) -> None:
    assert await raw_get(app, path) in (403, 404)
    encoded = await gateway.get(path.replace(".", "%2e"), headers=PATIENT)  # percent-encoded: decoded, refused
    outcome(encoded, encoded.status_code)
    assert encoded.status_code in (403, 404)
    assert upstream.requests == []


async def test_an_id_with_dots_inside_is_an_id(gateway, upstream) -> None:
    upstream.answer = lambda r: json_answer({"resourceType": "Patient", "id": "a..b"})
    assert (await gateway.get("/Patient/a..b", headers=PATIENT)).status_code == 403  # not pat-001's: checked
    assert upstream.requests[-1].url.path == "/r4/Patient/a..b"


# --- what comes back -----------------------------------------------------------------------------


async def test_search_answer_within_access_passes_unchanged(gateway, upstream) -> None:
    body = bundle(match(observation("pat-001")))
    upstream.answer = lambda r: json_answer(body, **{"Set-Cookie": "upstream=1", "ETag": 'W/"1"'})
    response = await gateway.get("/Observation", headers=PATIENT)
    assert response.status_code == 200 and response.json() == body
    assert "set-cookie" not in response.headers and response.headers["etag"] == 'W/"1"'


async def test_search_answer_with_a_match_outside_access_is_refused(gateway, upstream) -> None:
    # the upstream ignored the narrowing parameter: the gateway still shows nothing of pat-002
    upstream.answer = lambda r: json_answer(bundle(match(observation("pat-001")), match(observation("pat-002"))))
    response = await gateway.get("/Observation", headers=PATIENT)
    assert "outside this token's access" in outcome(response, 502)
    assert "pat-002" not in response.text


async def test_included_resources_outside_access_are_dropped_and_outcome_entries_kept(gateway, upstream) -> None:
    mine = {"resourceType": "Patient", "id": "pat-001"}
    other = {"resourceType": "Patient", "id": "pat-002"}
    warning = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "informational"}]}
    upstream.answer = lambda r: json_answer(bundle(
        match(observation("pat-001")), {"resource": other, "search": {"mode": "include"}},
        {"resource": mine, "search": {"mode": "include"}}, {"resource": warning, "search": {"mode": "outcome"}},
        {"fullUrl": "https://elsewhere.example/Patient/pat-002"}))
    response = await gateway.get("/Observation", headers=PATIENT)
    assert response.status_code == 200, response.text
    kept = [e["resource"] for e in response.json()["entry"]]
    assert kept == [observation("pat-001"), mine, warning]


@pytest.mark.parametrize("streamed", [False, True])
async def test_answer_over_the_size_cap_is_refused_not_passed_unchecked(gateway, upstream, streamed) -> None:
    big = orjson.dumps(bundle(*[match(observation("pat-001", f"o{i}")) for i in range(100)]))
    assert len(big) > 4000
    if streamed:  # no Content-Length: counted while read
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000]

        upstream.answer = lambda r: httpx.Response(200, content=chunks(), headers=FHIR)
    else:
        upstream.answer = lambda r: httpx.Response(200, content=big, headers=FHIR)
    assert "larger than the 4000 bytes" in outcome(await gateway.get("/Observation", headers=PATIENT), 502)


@pytest.mark.parametrize("answer", [
    httpx.Response(200, content=b"<Bundle/>", headers={"Content-Type": "application/fhir+xml"}),
    httpx.Response(200, content=b"{not json", headers={"Content-Type": "application/fhir+json"}),
    httpx.Response(302, headers={"Location": "https://elsewhere.example/"}),
])
async def test_answers_the_gateway_cannot_check_are_refused(gateway, upstream, answer) -> None:
    upstream.answer = lambda r: answer
    outcome(await gateway.get("/Observation", headers=PATIENT), 502)


async def test_upstream_errors_pass_only_as_operation_outcomes(gateway, upstream) -> None:
    upstream.answer = lambda r: httpx.Response(500, content=b"<html>stack trace at db.internal:5432</html>",
                                               headers={"Content-Type": "text/html"})
    response = await gateway.get("/Observation", headers=PATIENT)
    outcome(response, 502)
    assert "db.internal" not in response.text
    not_found = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    upstream.answer = lambda r: json_answer(not_found, 404)
    response = await gateway.get("/Observation/missing", headers=PATIENT)
    assert response.status_code == 404 and response.json() == not_found


async def test_written_resource_returned_outside_access_is_refused(gateway, upstream) -> None:
    # the caller may write pat-001's Observation; the upstream answers with someone else's
    upstream.answer = lambda r: json_answer(observation("pat-002", "new"), 201)
    response = await gateway.post("/Observation", json=observation("pat-001"), headers=PATIENT)
    outcome(response, 502)
    sent = upstream.requests[-1]
    assert sent.headers["content-type"] == "application/fhir+json" and "cookie" not in sent.headers
    upstream.answer = lambda r: json_answer(observation("pat-001", "new"), 201, Location=f"{UPSTREAM}/Observation/new")
    created = await gateway.post("/Observation", json=observation("pat-001"), headers=PATIENT)
    assert created.status_code == 201 and created.json()["id"] == "new" and "location" in created.headers


async def test_read_of_another_resource_than_asked_is_refused(gateway, upstream) -> None:
    upstream.answer = lambda r: json_answer(observation("pat-001", "other-id"))
    outcome(await gateway.get("/Observation/o1", headers=PATIENT), 502)
    upstream.answer = lambda r: json_answer(observation("pat-001", "o1"))
    assert (await gateway.get("/Observation/o1", headers=PATIENT)).status_code == 200
