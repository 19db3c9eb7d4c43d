"""Property: no input yields a 500 (DESIGN: "bad input always gets a clear, standard error").

Sync hypothesis tests drive a dedicated app through starlette's TestClient (which runs the lifespan
in its own loop), once per database backend.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OctKey
from starlette.testclient import TestClient

from ostiary.web.app import make_app
from tests.conftest import ISSUER, basic, settings_for

from ._helpers import JWT_BEARER, TOKEN_URL, new_ec_key, public_jwks

# Each endpoint sees ~150-250 examples in all (three strategies x 50-75, plus the every-route test);
# the whole file stays well under a minute per database.
FUZZ = settings(max_examples=50, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FUZZ_MORE = settings(FUZZ, max_examples=100)
INITIAL = "initial-token-for-tests"
OAUTH_JSON_PATHS = ("/token", "/introspect", "/revoke", "/register")

# --- strategies ----------------------------------------------------------------------------------------

PARAMS = ("grant_type", "scope", "resource", "client_id", "client_secret", "client_assertion",
          "client_assertion_type", "token", "token_type_hint", "code", "redirect_uri", "code_verifier",
          "refresh_token", "audience", "nonce")
SPECIAL_VALUES = ("client_credentials", "authorization_code", "refresh_token", JWT_BEARER, "openid api:read",
                  "https://a.example/api", "http://[::1", "https://a.example/#f", "/relative", "a.b.c",
                  "x" * 70_000, "\x00", "é", "\ud800", "api:read\x7f", "+", " ")
RAW_PIECES = ("%", "%Z", "%ZZ", "%00", "%ED%A0%80", "%FF%FE", "%C3%28", "+", "&&", "==", "=", "%25", "é", "\x00",
              ";", "%0D%0A")
CONTENT_TYPES = (None, "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
                 "APPLICATION/X-WWW-FORM-URLENCODED", "application/json", "text/plain",
                 "multipart/form-data; boundary=xyz", "application/jwt", "", ";", "application/x-www-form-urlencoded;;")

latin1_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
values = st.one_of(st.text(max_size=60), st.sampled_from(SPECIAL_VALUES), latin1_text)
keys = st.one_of(st.sampled_from(PARAMS), st.text(max_size=12))


def _piece(kind: str, key: str, value: str) -> str:
    if kind == "quoted":
        return f"{quote(key, safe='', errors='surrogatepass')}={quote(value, safe='', errors='surrogatepass')}"
    if kind == "raw":
        return f"{key}={value}"
    if kind == "bare":
        return key
    return f"{key}={value}{RAW_PIECES[len(value) % len(RAW_PIECES)]}"


form_pieces = st.lists(st.tuples(st.sampled_from(("quoted", "quoted", "raw", "bare", "broken")), keys, values),
                       max_size=12)
form_bodies = st.one_of(
    form_pieces.map(lambda ps: "&".join(_piece(*p) for p in ps).encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from((*RAW_PIECES, "grant_type=client_credentials", "scope=a")), max_size=20)
    .map(lambda ps: "&".join(ps).encode()),
    st.just(b"a=1&" * 100),  # more fields than allowed
)
bodies = st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
                   form_bodies)
content_types = st.one_of(st.sampled_from(CONTENT_TYPES), st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40))


def _header_bytes(raw: bytes) -> bytes:
    # What a real HTTP parser would let through: no CR, LF or NUL in a field value.
    return raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")


def authorizations(client_id: str, secret: str) -> st.SearchStrategy[bytes | None]:
    good = basic(client_id, secret)["Authorization"].encode()
    return st.one_of(
        st.none(),
        st.just(good),
        st.binary(max_size=80).map(lambda b: b"Basic " + base64.b64encode(b)),
        st.binary(max_size=60).map(lambda b: b"Basic " + b),
        st.text(max_size=40).map(lambda t: b"Basic " + base64.b64encode(
            f"{quote(client_id)}:{t}".encode("utf-8", "surrogatepass"))),
        st.text(max_size=40).map(lambda t: b"Basic " + base64.b64encode(
            f"{t}:{secret}".encode("utf-8", "surrogatepass"))),
        st.sampled_from((b"Basic", b"Basic ", b"Basic ====", b"basic Og==", b"Basic JTAwOiUwMA==",
                         b"Basic " + base64.b64encode(b"%00:%00"), b"Basic " + base64.b64encode(b"%ZZ:%"),
                         b"Bearer", b"Bearer ", b"Negotiate abc", good + b"x", good + b" extra")),
        st.binary(max_size=60).map(lambda b: b"Bearer " + b),
        st.binary(max_size=60),
    ).map(lambda v: None if v is None else _header_bytes(v))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def assertions(draw: st.DrawFn, cid: str, key: Any, hs_cid: str, hs_key: OctKey) -> str:
    kind = draw(st.sampled_from(("segments", "junk_payload", "alg_none", "random_header", "random_claims",
                                 "random_claims_hs", "almost_valid")))
    now = int(time.time())
    if kind == "segments":
        part = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.", max_size=60)
        return ".".join(draw(st.lists(part, min_size=1, max_size=5)))
    if kind == "junk_payload":
        header = b64(_json({"alg": "ES256", "kid": key.kid}))
        return f"{header}.{b64(draw(st.binary(max_size=80)))}.{b64(draw(st.binary(max_size=80)))}"
    if kind == "alg_none":
        claims = {"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": now + 60, "jti": str(draw(st.integers()))}
        alg = draw(st.sampled_from(("none", "None", "NONE", "")))
        return f"{b64(_json({'alg': alg}))}.{b64(_json(claims))}."
    if kind == "random_header":
        header = draw(st.dictionaries(st.sampled_from(("alg", "kid", "typ", "crit", "jwk", "x5c", "b64")),
                                      json_values, max_size=5))
        claims = {"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": now + 60, "jti": "j"}
        return f"{b64(_json(header))}.{b64(_json(claims))}.{b64(draw(st.binary(max_size=64)))}"
    claim_names = st.sampled_from(("iss", "sub", "aud", "exp", "iat", "nbf", "jti"))
    claims = draw(st.dictionaries(claim_names, json_values, max_size=7))
    if kind == "almost_valid":
        base = {"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": now + 60, "iat": now, "jti": draw(st.text())}
        claims = {**base, **draw(st.dictionaries(claim_names, json_values, max_size=2))}
    if kind == "random_claims_hs":
        claims.setdefault("sub", hs_cid)
        return jws.serialize_compact({"alg": "HS256"}, _json(claims), hs_key, algorithms=["HS256"])
    if draw(st.booleans()):
        claims.setdefault("sub", cid)
    return jws.serialize_compact({"alg": "ES256", "kid": key.kid}, _json(claims), key, algorithms=["ES256"])


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(database_url: str):
    app = make_app(settings_for(database_url))
    with TestClient(app, base_url=ISSUER, raise_server_exceptions=False) as c:
        yield c


def _register(client: TestClient, **metadata: Any) -> dict[str, Any]:
    metadata.setdefault("grant_types", ["client_credentials"])
    r = client.post("/register", json=metadata, headers={"Authorization": f"Bearer {INITIAL}"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _operator_sets(client: TestClient, client_id: str, **changes: Any) -> None:
    provider = client.app.state.provider  # type: ignore[attr-defined]

    async def change() -> None:
        stored = await provider.clients.get(client_id)
        await provider.clients.update(dataclasses.replace(stored, **changes))
        provider.cached_clients.invalidate(client_id)

    client.portal.call(change)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def creds(client: TestClient) -> dict[str, Any]:
    key = new_ec_key()
    basic_client = _register(client, scope="api:read api:write")
    opaque_client = _register(client, scope="api:read")
    _operator_sets(client, opaque_client["client_id"], access_token_format="opaque")  # admin-only metadata
    pk = _register(client, token_endpoint_auth_method="private_key_jwt", jwks=public_jwks(key), scope="api:read")
    hs = _register(client, token_endpoint_auth_method="client_secret_jwt", scope="api:read")
    victim = _register(client, scope="api:read")  # its metadata is overwritten by the PUT fuzzer
    tokens = []
    for c in (basic_client, opaque_client):
        r = client.post("/token", data={"grant_type": "client_credentials"},
                        headers=basic(c["client_id"], c["client_secret"]))
        tokens.append(r.json()["access_token"])
    return {"basic": basic_client, "opaque": opaque_client, "pk": pk, "key": key, "hs": hs,
            "hs_key": OctKey.import_key(hs["client_secret"].encode()), "victim": victim, "tokens": tokens}


# --- checks --------------------------------------------------------------------------------------------

def check(r: httpx.Response, *, oauth_json: bool = True) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if oauth_json and 400 <= r.status_code < 500:
        body = r.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], r.text
        assert isinstance(body.get("error_description", ""), str)


def post(client: TestClient, path: str, body: bytes, content_type: str | None, auth: bytes | None) -> httpx.Response:
    headers: dict[str, Any] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if auth is not None:
        headers["Authorization"] = auth
    return client.post(path, content=body, headers=headers)


def form_body(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k, safe='', errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}"
                    for k, v in pairs).encode()


# --- token, introspection, revocation -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@FUZZ
@given(data=st.data(), body=bodies, content_type=content_types)
def test_rfc6749_5_2_any_body_and_content_type_gives_4xx_never_500(client, creds, path, data, body, content_type):
    auth = data.draw(authorizations(creds["basic"]["client_id"], creds["basic"]["client_secret"]))
    check(post(client, path, body, content_type, auth))


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@FUZZ
@given(data=st.data(), pairs=st.lists(st.tuples(keys, values), max_size=10))
def test_rfc6749_5_2_any_form_gives_4xx_never_500(client, creds, path, data, pairs):
    c = data.draw(st.sampled_from(("basic", "opaque")))
    auth = data.draw(authorizations(creds[c]["client_id"], creds[c]["client_secret"]))
    if data.draw(st.booleans()):
        pairs = [("token", data.draw(st.sampled_from(creds["tokens"]))), *pairs]
    check(post(client, path, form_body(pairs), "application/x-www-form-urlencoded", auth))


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@FUZZ
@given(data=st.data())
def test_rfc7523_3_any_client_assertion_gives_4xx_never_500(client, creds, path, data):
    value = data.draw(assertions(creds["pk"]["client_id"], creds["key"], creds["hs"]["client_id"], creds["hs_key"]))
    pairs = [("client_assertion_type", data.draw(st.sampled_from((JWT_BEARER, JWT_BEARER, "urn:x", "")))),
             ("client_assertion", value), ("grant_type", "client_credentials"), ("token", "t")]
    if data.draw(st.booleans()):
        pairs.append(("client_id", data.draw(st.sampled_from((creds["pk"]["client_id"], "other")))))
    if data.draw(st.booleans()):
        pairs.append(("scope", data.draw(values)))
    check(post(client, path, form_body(pairs), "application/x-www-form-urlencoded", None))


@FUZZ
@given(token=st.one_of(values, st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.",
                                       max_size=400)),
       hint=st.one_of(st.none(), values), path=st.sampled_from(("/introspect", "/revoke")))
def test_rfc7662_rfc7009_any_token_value_gives_a_standard_answer(client, creds, token, hint, path):
    pairs = [("token", token)] + ([("token_type_hint", hint)] if hint is not None else [])
    r = post(client, path, form_body(pairs), "application/x-www-form-urlencoded",
             basic(creds["basic"]["client_id"], creds["basic"]["client_secret"])["Authorization"].encode())
    check(r)


# --- registration --------------------------------------------------------------------------------------

METADATA_KEYS = ("client_name", "token_endpoint_auth_method", "token_endpoint_auth_signing_alg", "grant_types",
                 "response_types", "redirect_uris", "post_logout_redirect_uris", "scope", "jwks", "jwks_uri",
                 "access_token_format", "access_token_lifetime", "audiences", "contacts", "client_uri",
                 "default_max_age", "require_auth_time", "software_statement", "client_id", "client_secret")
metadata_values = st.one_of(
    json_values,
    st.sampled_from(("client_secret_basic", "private_key_jwt", "client_secret_jwt", "none", "ES256", "HS256",
                     "opaque", "jwt", "http://[::1", "https://a.example/cb", "https://a.example/#x")),
    st.lists(st.sampled_from(("client_credentials", "authorization_code", "refresh_token", "code",
                              "https://a.example/cb", "http://[::1", "http://evil.example/cb", "javascript:x",
                              "app.example:/cb", "")), max_size=3),
    st.just({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}),
    st.just({"keys": [{"kty": "oct", "k": "AAAA"}]}),
)
metadata_objects = st.dictionaries(st.one_of(st.sampled_from(METADATA_KEYS), st.text(max_size=8)),
                                   metadata_values, max_size=8)


@FUZZ_MORE
@given(metadata=st.one_of(metadata_objects, json_values))
def test_rfc7591_3_any_json_metadata_gives_201_or_4xx_never_500(client, metadata):
    r = client.post("/register", content=_json(metadata), headers={
        "Authorization": f"Bearer {INITIAL}", "Content-Type": "application/json"})
    check(r)


@FUZZ_MORE
@given(data=st.data(), body=bodies, content_type=content_types)
def test_rfc7591_3_any_body_and_authorization_gives_4xx_never_500(client, creds, data, body, content_type):
    auth = data.draw(st.one_of(authorizations("x", "y"), st.just(f"Bearer {INITIAL}".encode())))
    check(post(client, "/register", body, content_type, auth))


@FUZZ_MORE
@given(data=st.data(), metadata=st.one_of(metadata_objects, json_values),
       method=st.sampled_from(("GET", "PUT", "DELETE", "POST", "PATCH")))
def test_rfc7592_2_any_configuration_request_gives_4xx_never_500(client, creds, data, metadata, method):
    victim = creds["victim"]
    if data.draw(st.booleans()):
        client_id = victim["client_id"]
        if method == "DELETE":
            method = "GET"  # keep the victim registered
    else:
        client_id = data.draw(st.one_of(st.text(max_size=40), st.sampled_from(("%00", "..", "%2F", "a" * 300))))
    token = data.draw(st.one_of(st.just(victim["registration_access_token"]), st.text(max_size=30)))
    auth = _header_bytes(f"Bearer {token}".encode("utf-8", "surrogatepass"))
    if isinstance(metadata, dict) and data.draw(st.booleans()):
        metadata = {**metadata, "client_id": client_id}
    path = "/register/" + quote(client_id, safe="", errors="surrogatepass")
    r = client.request(method, path, content=_json(metadata),
                       headers={"Authorization": auth, "Content-Type": "application/json"})
    # "/register/.." is normalized by the client to "/", the start page: an HTML answer there (its route's kind)
    check(r, oauth_json=r.request.url.path.startswith("/register/"))


# --- every route -------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=150)
@given(data=st.data(), body=bodies, content_type=content_types,
       method=st.sampled_from(("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")),
       query=st.lists(st.tuples(keys, st.text(max_size=60)), max_size=5))
def test_every_route_any_request_gives_no_500(client, creds, data, body, content_type, method, query):
    paths = sorted({getattr(r, "path", "/") for r in client.app.routes})  # type: ignore[attr-defined]
    path = data.draw(st.sampled_from(paths)).replace("{client_id}", "x").replace("{interaction_id}", "x")
    auth = data.draw(authorizations(creds["basic"]["client_id"], creds["basic"]["client_secret"]))
    qs = "&".join(f"{quote(k, safe='', errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}"
                  for k, v in query)
    headers: dict[str, Any] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if auth is not None:
        headers["Authorization"] = auth
    r = client.request(method, f"{path}?{qs}" if qs else path, content=body, headers=headers)
    check(r, oauth_json=path in OAUTH_JSON_PATHS and method == "POST")
