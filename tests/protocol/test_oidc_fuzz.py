"""Hypothesis: whatever a browser or client sends to the OpenID Connect endpoints, the answer is never a 5xx."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette nudges towards httpx2; the TestClient works as it is
    from starlette.testclient import TestClient

from ostiary.web.app import make_app
from tests.conftest import settings_for

from ._oidc_flow import PASSWORD, REDIRECT, basic, csrf_of, pkce

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

NAMES = ["client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
         "code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "id_token_hint", "claims",
         "request", "request_uri", "code", "code_verifier", "refresh_token", "grant_type", "access_token",
         "post_logout_redirect_uri", "csrf_token", "decision", "username", "password", "choice", "resource",
         "client_secret", "assertion", "x"]
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
tricky = st.sampled_from(["", " ", "openid", "code", "none", "login", "S256", "plain", "form_post", "query",
                          REDIRECT, "http://127.0.0.1:1/cb", "{}", '{"id_token": {"email": null}}', "null",
                          "[]", "-1", "99999999999", "a" * 300, "\x00", "%00", "é", "..", "eyJhbGciOiJub25lIn0.e30."])
values = st.one_of(text, tricky)


def pairs(known: Any) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(st.one_of(st.sampled_from(NAMES), text), st.one_of(values, known)), max_size=10)


class Fuzz:
    def __init__(self, client: TestClient, cid: str, secret: str, pub: str) -> None:
        self.http, self.cid, self.secret, self.pub = client, cid, secret, pub


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    db = f"sqlite:///{tmp_path_factory.mktemp('oidc-fuzz') / 'ostiary.db'}"
    app = make_app(settings_for(db))
    with TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False) as client:
        provider = app.state.provider

        async def setup() -> tuple[str, str, str]:
            await provider.user_service.create("fuzzer", PASSWORD, {"email": "f@example.com"})
            client_rec, issued = await provider.registry.create(
                {"grant_types": ["authorization_code", "refresh_token"], "redirect_uris": [REDIRECT],
                 "post_logout_redirect_uris": [REDIRECT], "scope": "api:read"})
            pub, _ = await provider.registry.create(
                {"grant_types": ["authorization_code", "refresh_token"], "redirect_uris": [REDIRECT],
                 "token_endpoint_auth_method": "none"})
            return client_rec.client_id, issued.client_secret, pub.client_id

        cid, secret, pub = client.portal.call(setup)
        yield Fuzz(client, cid, secret, pub)


def post_form(fuzz: Fuzz, path: str, form: list[tuple[str, str]], headers: dict[str, str] | None = None) -> Any:
    """A form body with repeated names kept (httpx `data=` takes no list of pairs)."""
    return fuzz.http.post(path, content=urlencode(form).encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def _ok(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])


@FUZZ
@given(params=pairs(st.nothing()), method=st.sampled_from(["GET", "POST"]), known=st.booleans())
def test_oidc_core_3_1_2_authorize_never_answers_5xx(fuzz: Fuzz, params, method, known):
    if known:
        params = [("client_id", fuzz.cid), ("redirect_uri", REDIRECT), *params]
    if method == "GET":
        _ok(fuzz.http.get("/authorize", params=params))
    else:
        _ok(post_form(fuzz, "/authorize", params))


@FUZZ
@given(interaction=text, step=st.sampled_from(["", "/login", "/consent", "/select", "/abort"]),
       form=pairs(st.nothing()))
def test_oidc_core_3_1_2_3_interaction_never_answers_5xx(fuzz: Fuzz, interaction, step, form):
    path = "/interaction/" + quote(interaction, safe="") + step
    if not step:
        _ok(fuzz.http.get(path))
    else:
        _ok(post_form(fuzz, path, form))


@FUZZ
@given(form=pairs(st.nothing()), step=st.sampled_from(["/login", "/consent", "/select", "/abort"]))
def test_oidc_core_3_1_2_3_live_interaction_with_random_forms_never_answers_5xx(fuzz: Fuzz, form, step):
    r = fuzz.http.get("/authorize", params={"client_id": fuzz.cid, "redirect_uri": REDIRECT,
                                            "response_type": "code", "scope": "openid",
                                            "code_challenge": pkce()[1], "code_challenge_method": "S256"})
    path = r.headers["location"]
    page = fuzz.http.get(path)
    form = [("csrf_token", csrf_of(page.text)), *[(k, v) for k, v in form if k not in ("username", "password")]]
    _ok(post_form(fuzz, path + step, form))
    fuzz.http.cookies.clear()


@FUZZ
@given(grant=st.sampled_from(["authorization_code", "refresh_token"]), form=pairs(st.nothing()),
       auth=st.sampled_from(["basic", "public", "none"]))
def test_rfc6749_5_2_token_with_random_code_and_refresh_forms_never_answers_5xx(fuzz: Fuzz, grant, form, auth):
    data = [("grant_type", grant), *[(k, v) for k, v in form if k != "grant_type"]]
    headers = basic(fuzz.cid, fuzz.secret) if auth == "basic" else {}
    if auth == "public":
        data = [("client_id", fuzz.pub), *[(k, v) for k, v in data if k != "client_id"]]
    _ok(post_form(fuzz, "/token", data, headers))


@FUZZ
@given(header=st.one_of(st.none(), text.map(lambda t: "Bearer " + t), text),
       body=st.one_of(st.none(), pairs(st.nothing()), st.binary(max_size=80)),
       method=st.sampled_from(["GET", "POST"]),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", ""]))
def test_oidc_core_5_3_userinfo_never_answers_5xx(fuzz: Fuzz, header, body, method, content_type):
    headers: dict[str, Any] = {}
    if header is not None:
        raw = header.replace("\r", " ").replace("\n", " ").replace("\x00", " ").strip() or "Bearer"
        headers["Authorization"] = raw.encode("utf-8")  # raw bytes: non-ASCII too, as a browser could send
    if method == "GET":
        _ok(fuzz.http.get("/userinfo", headers=headers))
        return
    if content_type:
        headers["Content-Type"] = content_type
    if isinstance(body, bytes):
        _ok(fuzz.http.post("/userinfo", content=body, headers=headers))
    elif body is None:
        _ok(fuzz.http.post("/userinfo", headers=headers))
    else:
        _ok(fuzz.http.post("/userinfo", content=urlencode(body).encode(), headers=headers))


@FUZZ
@given(params=pairs(st.nothing()), method=st.sampled_from(["GET", "POST", "CONFIRM"]), known=st.booleans())
def test_rp_initiated_logout_never_answers_5xx(fuzz: Fuzz, params, method, known):
    if known:
        params = [("client_id", fuzz.cid), ("post_logout_redirect_uri", REDIRECT), *params]
    if method == "GET":
        _ok(fuzz.http.get("/logout", params=params))
    elif method == "POST":
        _ok(post_form(fuzz, "/logout", params))
    else:
        fuzz.http.cookies.set("ostiary_session", "x" * 10)
        _ok(post_form(fuzz, "/logout/confirm", params))
        fuzz.http.cookies.clear()
