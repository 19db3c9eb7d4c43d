"""Transport and headers under TLS (an https issuer, also behind a TLS-terminating proxy): `__Host-` cookies,
HSTS (RFC 6797), `Cache-Control: no-store` and `nosniff` (docs/security.md, transport and headers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import pytest

from ostiary.config import HttpSettings, KeySettings
from tests.conftest import RunningApp, basic, settings_for, start_app

from ._oidc_flow import browser, exchange, make_rp, make_user, run_flow

TLS_ISSUER = "https://as.example"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def tls(database_url: str) -> AsyncIterator[RunningApp]:
    """The app as it runs behind a TLS-terminating proxy: it speaks http, its issuer is https."""
    keys = KeySettings(generate=("ES256", "RS256"))
    async for r in start_app(settings_for(database_url, issuer=TLS_ISSUER, keys=keys)):
        yield r


def _set_cookies(headers) -> dict[str, str]:
    """name -> the raw Set-Cookie line."""
    out = {}
    for line in headers.get_list("set-cookie"):
        out[next(iter(SimpleCookie(line)))] = line
    return out


async def test_rfc6265bis_4_1_3_2_cookies_under_tls_are_host_prefixed_with_path_root(tls):
    user = await make_user(tls)
    cid, secret = await make_rp(tls)
    async with browser(tls, base_url=TLS_ISSUER) as b:
        flow = await run_flow(b, cid, secret, user)  # the whole login reads the cookies back by their new names
        assert (await exchange(b, flow)).status_code == 200
        names = {c.name for c in b.cookies.jar}
    assert {"__Host-ostiary_session"} <= names and not any(n.startswith("ostiary_") for n in names)
    async with browser(tls, base_url=TLS_ISSUER) as b:
        r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": "https://rp.example/cb",
                                              "response_type": "code", "scope": "openid", "state": "s",
                                              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                              "code_challenge_method": "S256"})
    line = _set_cookies(r.headers)["__Host-ostiary_interaction"].lower()
    assert "path=/;" in line + ";" and "secure" in line and "httponly" in line and "domain" not in line


async def test_cookies_without_tls_keep_plain_names(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user)
        assert "ostiary_session" in {c.name for c in b.cookies.jar}


async def test_rfc6797_hsts_under_an_https_issuer_without_include_subdomains(tls):
    for path in ("/.well-known/openid-configuration", "/jwks", "/token", "/nope"):
        r = await tls.http.get(path)
        assert r.headers["strict-transport-security"] == "max-age=31536000", path


@pytest.mark.parametrize("issuer, http, expected", [
    ("http://127.0.0.1:8000", HttpSettings(), None),
    ("https://localhost:8443", HttpSettings(), None),  # would pin every localhost port to https
    ("https://auth.localhost:8443", HttpSettings(), None),
    ("https://as.example", HttpSettings(hsts_include_subdomains=True), "max-age=31536000; includeSubDomains"),
    ("https://as.example", HttpSettings(hsts_max_age=0), None),
])
def test_rfc6797_hsts_value_by_issuer_and_settings(database_url, issuer, http, expected):
    from ostiary.web.security_headers import hsts_value

    assert hsts_value(settings_for(database_url, issuer=issuer, http=http)) == expected


async def test_no_store_on_every_response_with_tokens_or_patient_data_and_nosniff_on_json(tls):
    cid, secret = await tls.add_client(scope="system/*.rs", system_scopes_with_secret=True)
    r = await tls.http.post("/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"},
                            headers=basic(cid, secret))
    token = r.json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    answers = [r, await tls.http.get("/fhir/Patient", headers=bearer),
               await tls.http.get("/fhir/Patient/nope", headers=bearer),
               await tls.http.get("/userinfo", headers=bearer),
               await tls.http.post("/introspect", data={"token": token}, headers=basic(cid, secret)),
               await tls.http.get("/nope"), await tls.http.get("/healthz")]
    for answer in answers:
        assert "no-store" in answer.headers["cache-control"], answer.url
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url
    jwks = await tls.http.get("/jwks")  # public keys keep their own caching
    assert jwks.headers["cache-control"].startswith("public") and jwks.headers["x-content-type-options"] == "nosniff"
