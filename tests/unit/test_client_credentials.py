"""Client credentials token source: caching, single flight, early refresh, 401 retry, no secrets leaked."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import requests

from ostiary.client import ClientCredentials, ClientSecretBasic, ConfigError, Secret, Token
from ostiary.client.env import settings_from_env

SECRET = "s3cr3t-value-never-logged"
TOKEN_URL = "https://as.example/token"


class TokenEndpoint:
    """A mock token endpoint handing out at-1, at-2, ... and counting requests."""

    def __init__(self, expires_in: int = 3600, delay: float = 0.05) -> None:
        self.count = 0
        self.expires_in = expires_in
        self.delay = delay
        self.lock = threading.Lock()
        self.forms: list[dict[str, str]] = []

    def _answer(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.count += 1
            n = self.count
        self.forms.append(dict(httpx.QueryParams(request.content.decode())))
        body = {"access_token": f"at-{n}", "token_type": "Bearer", "expires_in": self.expires_in}
        return httpx.Response(200, json=body)

    def handler(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self.delay)
        return self._answer(request)

    async def ahandler(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay)
        return self._answer(request)


def source(endpoint: TokenEndpoint, **kw: object) -> ClientCredentials:
    return ClientCredentials(
        ClientSecretBasic("svc", Secret(SECRET)),
        token_url=TOKEN_URL,
        scope="read",
        http=httpx.Client(transport=httpx.MockTransport(endpoint.handler)),
        async_http=httpx.AsyncClient(transport=httpx.MockTransport(endpoint.ahandler)),
        **kw,  # type: ignore[arg-type]
    )


def test_rfc6749_4_4_100_threads_make_exactly_one_token_request():
    endpoint = TokenEndpoint()
    src = source(endpoint)
    barrier = threading.Barrier(100)
    results: list[str] = []

    def work() -> None:
        barrier.wait()
        results.append(src.get_token().access_token)

    threads = [threading.Thread(target=work) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert endpoint.count == 1 and results == ["at-1"] * 100
    assert endpoint.forms[0] == {"grant_type": "client_credentials", "scope": "read"}


async def test_rfc6749_4_4_100_tasks_make_exactly_one_token_request():
    endpoint = TokenEndpoint()
    src = source(endpoint)
    tokens = await asyncio.gather(*(src.aget_token() for _ in range(100)))
    assert endpoint.count == 1 and {t.access_token for t in tokens} == {"at-1"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_token_is_refreshed_at_80_percent_of_its_lifetime():
    endpoint = TokenEndpoint(expires_in=100, delay=0)
    clock = Clock()
    src = source(endpoint, clock=clock)
    first = src.get_token()
    first = Token(**{**first.to_dict(), "issued_at": clock.now, "expires_at": clock.now + 100})
    src._token = first  # pin the token's clock to the test clock
    clock.now += 79
    assert src.get_token().access_token == "at-1" and endpoint.count == 1
    clock.now += 2  # 81% of the lifetime: refreshed before it expires
    assert src.get_token().access_token == "at-2" and endpoint.count == 2


def test_failed_refresh_keeps_a_still_valid_token():
    clock = Clock()
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(200, json={"access_token": "at-1", "token_type": "Bearer", "expires_in": 100})
        return httpx.Response(503, json={"error": "temporarily_unavailable"})

    src = ClientCredentials(ClientSecretBasic("svc", Secret(SECRET)), token_url=TOKEN_URL,
                            http=httpx.Client(transport=httpx.MockTransport(handler)), clock=clock)
    tok = src.get_token()
    src._token = Token(**{**tok.to_dict(), "issued_at": clock.now, "expires_at": clock.now + 100})
    clock.now += 90
    assert src.get_token().access_token == "at-1"


class Api:
    """A resource server on 127.0.0.1 that refuses at-1 (revoked) and accepts anything else."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                auth = self.headers.get("Authorization", "")
                outer.seen.append(auth)
                status = 401 if auth == "Bearer at-1" else 200
                payload = json.dumps({"echo": body.decode()}).encode()
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/data"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_rfc6750_3_1_httpx_401_triggers_one_refresh_and_one_retry(api: Api):
    endpoint = TokenEndpoint(delay=0)
    src = source(endpoint)
    with httpx.Client(auth=src.httpx_auth()) as client:
        r = client.post(api.url, content=b"payload")
    assert r.status_code == 200 and r.json() == {"echo": "payload"}
    assert api.seen == ["Bearer at-1", "Bearer at-2"] and endpoint.count == 2


async def test_rfc6750_3_1_async_httpx_401_triggers_one_refresh_and_one_retry(api: Api):
    endpoint = TokenEndpoint(delay=0)
    src = source(endpoint)
    async with httpx.AsyncClient(auth=src.httpx_auth()) as client:
        r = await client.post(api.url, content=b"payload")
    assert r.status_code == 200 and api.seen == ["Bearer at-1", "Bearer at-2"] and endpoint.count == 2


def test_a_second_401_is_returned_not_retried_forever(api: Api):
    def handler(request: httpx.Request) -> httpx.Response:  # always hands out the revoked token
        return httpx.Response(200, json={"access_token": "at-1", "token_type": "Bearer", "expires_in": 60})

    src = ClientCredentials(ClientSecretBasic("svc", Secret(SECRET)), token_url=TOKEN_URL,
                            http=httpx.Client(transport=httpx.MockTransport(handler)))
    with httpx.Client(auth=src.httpx_auth()) as client:
        assert client.post(api.url, content=b"x").status_code == 401
    assert len(api.seen) == 2


def test_rfc6750_3_1_requests_401_triggers_one_refresh_and_one_retry(api: Api):
    endpoint = TokenEndpoint(delay=0)
    src = source(endpoint)
    r = requests.post(api.url, data=b"payload", auth=src.requests_auth(), timeout=5)
    assert r.status_code == 200 and r.json() == {"echo": "payload"}
    assert api.seen == ["Bearer at-1", "Bearer at-2"] and endpoint.count == 2
    assert [h.status_code for h in r.history] == [401]


def test_secrets_never_appear_in_logs_or_reprs(caplog: pytest.LogCaptureFixture, api: Api):
    endpoint = TokenEndpoint(delay=0)
    src = source(endpoint)
    with caplog.at_level(logging.DEBUG):
        token = src.get_token()
        with httpx.Client(auth=src.httpx_auth()) as client:
            client.post(api.url, content=b"x")
        logging.getLogger("test").info("source=%s token=%s auth=%r", src, token, src.auth)
    text = caplog.text + repr(src) + repr(token) + repr(src.auth) + str(src.auth.client_secret)
    text += repr(src.httpx_auth()) + f"{src.auth.client_secret}"
    assert SECRET not in text
    assert "at-1" not in text and "at-2" not in text
    expected = "Basic " + base64.b64encode(f"svc:{SECRET}".encode()).decode()
    assert src.auth.client_secret.reveal() == SECRET and expected  # the value is still usable


def test_env_configuration_with_file_variants(tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    settings = settings_from_env({
        "OSTIARY_CLIENT_ID": "svc",
        "OSTIARY_CLIENT_SECRET_FILE": str(secret_file),
        "OSTIARY_TOKEN_URL": TOKEN_URL,
        "OSTIARY_SCOPE": "read write",
    })
    auth = settings["auth"]
    assert isinstance(auth, ClientSecretBasic) and auth.client_secret.reveal() == SECRET
    assert settings["scope"] == "read write" and settings["token_url"] == TOKEN_URL


def test_env_configuration_errors_name_the_variable(tmp_path: Path):
    with pytest.raises(ConfigError, match="OSTIARY_CLIENT_ID"):
        settings_from_env({})
    with pytest.raises(ConfigError, match="not both"):
        settings_from_env({"OSTIARY_CLIENT_ID": "a", "OSTIARY_CLIENT_ID_FILE": str(tmp_path / "x")})
    with pytest.raises(ConfigError, match="OSTIARY_TOKEN_URL or OSTIARY_ISSUER"):
        settings_from_env({"OSTIARY_CLIENT_ID": "a", "OSTIARY_CLIENT_SECRET": "b"})


def test_rfc8414_issuer_discovery_finds_the_token_endpoint():
    issuer = "https://as.example"
    endpoint = TokenEndpoint(delay=0)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json={"issuer": issuer, "token_endpoint": f"{issuer}/oauth/token"})
        assert request.url.path == "/oauth/token"
        return endpoint.handler(request)

    src = ClientCredentials.from_env(
        {"OSTIARY_CLIENT_ID": "svc", "OSTIARY_CLIENT_SECRET": SECRET, "OSTIARY_ISSUER": issuer},
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert src.get_token().access_token == "at-1"
    assert src.token_url == f"{issuer}/oauth/token"


def test_token_endpoint_error_is_token_error():
    from ostiary.client import TokenError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client", "error_description": "bad secret"})

    src = ClientCredentials(ClientSecretBasic("svc", Secret(SECRET)), token_url=TOKEN_URL,
                            http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(TokenError) as info:
        src.get_token()
    assert info.value.error == "invalid_client" and SECRET not in str(info.value)
