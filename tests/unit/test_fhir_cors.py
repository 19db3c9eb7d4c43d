"""Issue 9 item 2: the FHIR gateway's CORS (configured origins; FHIR allow and expose headers)."""

from __future__ import annotations

import httpx

from ostiary.fhir.access import TokenContext
from ostiary.fhir.gateway import make_gateway_app

APP = "https://app.example.com"


async def _nobody(token: str) -> TokenContext | None:
    return None


def _client() -> httpx.AsyncClient:
    # The upstream is never reached here: preflights are answered by the middleware, the rest is refused.
    app = make_gateway_app("http://127.0.0.1:9/r4", _nobody, cors_origins=[APP],
                           transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_issue9_2_gateway_preflight_allows_the_fhir_headers_for_a_configured_origin() -> None:
    async with _client() as client:
        r = await client.options("/Patient/1", headers={"Origin": APP, "Access-Control-Request-Method": "PUT",
                                                        "Access-Control-Request-Headers": "if-match, prefer"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == APP
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "if-match", "if-none-match", "prefer"} <= allowed
        r = await client.options("/Patient/1", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in r.headers


async def test_issue9_2_gateway_response_exposes_the_challenge_to_a_configured_origin() -> None:
    async with _client() as client:
        r = await client.get("/Patient", headers={"Origin": APP})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == APP
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"location", "etag", "content-location", "www-authenticate"} <= exposed
        r = await client.get("/Patient", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
