"""`ostiary serve --tls-self-signed`: HTTPS with a development certificate, issuer https."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e._server import ServerProcess, jwks_verify, start_server, token_response

pytestmark = [pytest.mark.e2e]

REGISTRATION_TOKEN = "tls-initial-access-token"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("e2e-tls"), "--tls-self-signed", tls=True,
                          env={"OSTIARY_REGISTRATION_TOKEN": REGISTRATION_TOKEN,
                               "OSTIARY_REGISTRATION__API_SCOPES": "api:read"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo(tls_server: ServerProcess) -> tuple[str, str]:
    secret = re.search(r"^\s+client_secret\s+(\S+)$", tls_server.stdout, re.M)
    assert secret, tls_server.stdout
    return "demo", secret.group(1)


def test_serves_https_with_an_https_issuer(tls_server: ServerProcess, demo: tuple[str, str]) -> None:
    assert tls_server.issuer.startswith("https://127.0.0.1:")
    with tls_server.http() as http:
        meta = http.get("/.well-known/oauth-authorization-server").json()
        assert meta["issuer"] == tls_server.issuer
        assert meta["token_endpoint"].startswith("https://")
        r = token_response(http, *demo, scope="api:read")
        assert r.status_code == 200, r.text
        jwks = http.get("/jwks").json()
    jwks_verify(r.json()["access_token"], jwks, issuer=tls_server.issuer)


def test_the_certificate_is_self_signed_not_trusted(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=5) as http:
        http.get(tls_server.base_url + "/healthz")


def test_plain_http_is_not_served(tls_server: ServerProcess) -> None:
    with httpx.Client(timeout=5) as http:
        try:
            r = http.get(f"http://127.0.0.1:{tls_server.port}/healthz")
        except httpx.HTTPError:
            return
    assert r.status_code >= 400


def test_ostiary_token_insecure_over_https(tls_server: ServerProcess, demo: tuple[str, str]) -> None:
    out = tls_server.cli("token", "--client-id", demo[0], "--client-secret", demo[1], "--issuer",
                         tls_server.issuer, "--insecure", "--decode")
    claims = json.loads(out.stdout.partition("\n")[2])["claims"]
    assert claims["iss"] == tls_server.issuer
    refused = tls_server.cli("token", "--client-id", demo[0], "--client-secret", demo[1], "--issuer",
                             tls_server.issuer, check=False)
    assert refused.returncode != 0 and "cannot reach" in refused.stderr


def test_registration_token_from_the_environment(tls_server: ServerProcess) -> None:
    metadata = {"client_name": "over tls", "grant_types": ["client_credentials"], "scope": "api:read"}
    with tls_server.http() as http:
        assert http.post("/register", json=metadata).status_code == 401
        r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
        assert r.status_code == 201, r.text
        client = r.json()
        assert client["registration_client_uri"].startswith(tls_server.issuer + "/register/")
        r = token_response(http, client["client_id"], client["client_secret"])
    assert r.status_code == 200, r.text
