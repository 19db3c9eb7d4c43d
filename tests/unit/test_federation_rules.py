"""Federation (issue 11 item 8): configuration, and every rule of the upstream flow against a fake upstream.

OIDC Core §3.1.3.7 (ID token validation), §3.1.2.1 (prompt=login, max_age), RFC 7636 (PKCE),
RFC 9207 (iss in the response), RFC 8725 §3.1 (no alg none). Each test names the attack it stops.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from joserfc.jwk import KeySet, OctKey, RSAKey

from ostiary.config import ConfigError, FederationProvider, load_settings
from ostiary.server.federation.accounts import federated_proof
from ostiary.server.federation.id_token import MAX_ID_TOKEN_BYTES, Freshness, IdTokenRefused, check_id_token
from ostiary.server.federation.login import FederationFailed, FederationLogin, PendingLogin
from ostiary.server.federation.upstream import UpstreamProvider
from tests.protocol._fake_idp import CLIENT_ID, CLIENT_SECRET, IDP, FakeIdp

TOML = f'''
[[federation]]
id = "hospital"
issuer = "{IDP}"
client_id = "{CLIENT_ID}"
client_secret_env = "HOSPITAL_SECRET"
label = "Hospital"
claims = {{ name = "name", email = "mail" }}
trust_amr = true
'''


def test_federation_tables_load_with_the_secret_from_the_environment(tmp_path):
    path = tmp_path / "ostiary.toml"
    path.write_text(TOML)
    settings = load_settings(env={"HOSPITAL_SECRET": "s3cret"}, config_file=path)
    (upstream,) = settings.federation
    assert (upstream.id, upstream.label, upstream.client_secret) == ("hospital", "Hospital", "s3cret")
    assert dict(upstream.claims) == {"name": "name", "email": "mail"}
    assert upstream.trust_amr and not upstream.trust_acr  # acr not trusted unless said
    assert "s3cret" not in repr(settings)  # never printed


def test_the_secret_can_come_from_a_file(tmp_path):
    (tmp_path / "secret").write_text("from-file\n")
    path = tmp_path / "ostiary.toml"
    path.write_text(TOML.replace('client_secret_env = "HOSPITAL_SECRET"',
                                 f'client_secret_file = "{tmp_path / "secret"}"'))
    assert load_settings(env={}, config_file=path).federation[0].client_secret == "from-file"


@pytest.mark.parametrize("change, message", [
    (('client_secret_env = "HOSPITAL_SECRET"', 'client_secret = "inline"'), "not in the config file"),
    (('id = "hospital"', 'id = "../x"'), "id"),
    ((f'issuer = "{IDP}"', 'issuer = "http://idp.example"'), "http issuer"),
    (('claims = { name = "name", email = "mail" }', 'claims = { fhirUser = "fhir" }'), "fhirUser"),
    (('trust_amr = true', 'algorithms = ["none"]'), "algorithms"),
    (('trust_amr = true', 'algorithms = ["HS256"]'), "algorithms"),
    (('trust_amr = true', 'scopes = ["profile"]'), "openid"),
])
def test_unsafe_federation_settings_fail_at_start(tmp_path, change, message):
    path = tmp_path / "ostiary.toml"
    path.write_text(TOML.replace(*change))
    with pytest.raises(ConfigError, match=message):
        load_settings(env={"HOSPITAL_SECRET": "s"}, config_file=path)


def test_a_missing_secret_variable_fails_at_start(tmp_path):
    path = tmp_path / "ostiary.toml"
    path.write_text(TOML)
    with pytest.raises(ConfigError, match="HOSPITAL_SECRET is not set"):
        load_settings(env={}, config_file=path)


# --- ID token rules -----------------------------------------------------------------------------------

NOW = int(time.time())
KEY = RSAKey.generate_key(2048, private=True, auto_kid=True)
KEYS = KeySet([RSAKey.import_key(KEY.as_dict(private=False))])


def _token(claims: dict[str, Any] | None = None, alg: str = "RS256", key: Any = KEY, **header: Any) -> str:
    idp = FakeIdp(key=key, header=header)
    base = {"iss": IDP, "sub": "u1", "aud": CLIENT_ID, "exp": NOW + 300, "iat": NOW, "nonce": "n-1",
            "auth_time": NOW - 10}
    return idp.sign({**base, **(claims or {})}, alg)


def _check(token: str, freshness: Freshness | None = None) -> dict[str, Any]:
    return check_id_token(token, KEYS, issuer=IDP, client_id=CLIENT_ID, nonce="n-1",
                          algorithms=("RS256", "ES256"), freshness=freshness or Freshness(NOW - 5), now=NOW)


def test_a_valid_id_token_passes():
    assert _check(_token())["sub"] == "u1"


@pytest.mark.parametrize("claims, reason", [
    ({"iss": "https://evil.example"}, "wrong issuer"),  # mix-up / another provider's token
    ({"aud": "another-client"}, "wrong audience"),  # a token minted for another relying party
    ({"aud": [CLIENT_ID, "other"]}, "azp"),  # several audiences need azp = us (§3.1.3.7 items 4-5)
    ({"aud": [CLIENT_ID, "other"], "azp": "other"}, "azp"),
    ({"azp": "other"}, "azp"),
    ({"nonce": "n-2"}, "nonce"),  # a replayed / injected ID token (§15.5.2)
    ({"nonce": None}, "nonce"),
    ({"exp": NOW - 3600}, "expired"),
    ({"iat": NOW + 3600}, "future"),
    ({"sub": "x" * 256}, "sub"),
    ({"sub": 12}, "sub"),
    ({"auth_time": NOW + 3600}, "future"),
    ({"auth_time": "yesterday"}, "auth_time"),
])
def test_id_token_rules(claims, reason):
    token = _token({k: v for k, v in claims.items() if v is not None})
    if claims.get("nonce", "") is None:
        token = FakeIdp(key=KEY).sign({"iss": IDP, "sub": "u1", "aud": CLIENT_ID, "exp": NOW + 300, "iat": NOW})
    with pytest.raises(IdTokenRefused, match=reason):
        _check(token)


def test_rfc8725_alg_none_is_refused():
    header = base64.urlsafe_b64encode(orjson.dumps({"alg": "none"})).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(orjson.dumps({"iss": IDP, "sub": "u1", "aud": CLIENT_ID, "exp": NOW + 60,
                                                  "iat": NOW, "nonce": "n-1"})).rstrip(b"=").decode()
    with pytest.raises(IdTokenRefused, match="not allowed"):
        _check(f"{header}.{body}.")


def test_hmac_with_a_public_key_as_secret_is_refused():
    """Algorithm confusion: HS256 keyed with something public. HMAC is never an allowed algorithm."""
    with pytest.raises(IdTokenRefused, match="not allowed"):
        _check(_token(alg="HS256", key=OctKey.import_key(b"k" * 32), kid="k1"))


def test_an_allowed_alg_the_admin_did_not_list_is_refused():
    with pytest.raises(IdTokenRefused, match="not allowed"):
        check_id_token(_token(alg="PS256"), KEYS, issuer=IDP, client_id=CLIENT_ID, nonce="n-1",
                       algorithms=("RS256",), freshness=Freshness(NOW), now=NOW)


def test_a_signature_by_another_key_is_refused():
    other = RSAKey.generate_key(2048, private=True, auto_kid=True)
    with pytest.raises(IdTokenRefused):
        _check(_token(key=other, kid=KEY.kid))  # claims our kid, signed by another key


def test_an_oversized_id_token_is_refused_before_parsing():
    with pytest.raises(IdTokenRefused, match="too large"):
        _check(_token({"pad": "x" * MAX_ID_TOKEN_BYTES}))


def test_oidc_3_1_2_1_prompt_login_refuses_an_older_upstream_authentication():
    """The upstream kept an old session and did not ask again: the re-authentication asked of us is not met."""
    with pytest.raises(IdTokenRefused, match="prompt=login"):
        _check(_token({"auth_time": NOW - 3600}), Freshness(NOW - 5, login=True))
    assert _check(_token({"auth_time": NOW - 2}), Freshness(NOW - 5, login=True))


def test_oidc_3_1_2_1_max_age_refuses_an_older_upstream_authentication():
    with pytest.raises(IdTokenRefused, match="max_age"):
        _check(_token({"auth_time": NOW - 3600}), Freshness(NOW - 5, max_age=600))
    without_auth_time = FakeIdp(key=KEY).sign({"iss": IDP, "sub": "u1", "aud": CLIENT_ID, "exp": NOW + 300,
                                               "iat": NOW, "nonce": "n-1"})
    with pytest.raises(IdTokenRefused, match="no auth_time"):
        _check(without_auth_time, Freshness(NOW - 5, max_age=600))


# --- the flow against a fake upstream -------------------------------------------------------------------

class MemoryReplay:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def first_use(self, key: str, expires_at: int) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _login(idp: FakeIdp, **config: Any) -> FederationLogin:
    upstream = FederationProvider(id="hospital", issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                  **config)
    http = httpx.AsyncClient(transport=idp.transport())
    return FederationLogin({"hospital": UpstreamProvider(upstream, http)}, "https://op.example", http,
                           MemoryReplay(), 900)


async def _round_trip(idp: FakeIdp, login: FederationLogin, *, prompt_login: bool = False,
                      max_age: int | None = None, edit: Any = None) -> Any:
    url, pending = await login.begin("hospital", "interaction-1", login=prompt_login, max_age=max_age,
                                     now=int(time.time()))
    answer = idp.authorize(url)
    if edit:
        edit(answer)
    return await login.finish(pending, "hospital", answer, int(time.time())), url, pending


async def test_the_upstream_request_carries_pkce_s256_state_nonce_and_forwarded_reauthentication():
    idp = FakeIdp()
    login = _login(idp)
    identity, url, pending = await _round_trip(idp, login, prompt_login=True, max_age=0)
    sent = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"] != pending.code_verifier
    assert sent["state"] == pending.state and sent["nonce"] == pending.nonce
    assert sent["prompt"] == "login" and sent["max_age"] == "0"
    assert sent["redirect_uri"] == "https://op.example/federation/hospital/callback"
    assert identity.subject == idp.sub and identity.profile["email"] == "someone@idp.example"


@pytest.mark.parametrize("edit, reason", [
    (lambda a: a.update(state="forged"), "state"),  # login CSRF: a callback this browser did not start
    (lambda a: a.update(iss="https://evil.example"), "iss"),  # RFC 9207 mix-up
    (lambda a: a.pop("iss"), "iss"),  # the upstream advertises iss, so it is required
    (lambda a: a.update(code="c" * 3000), "code"),  # oversized
    (lambda a: a.update(error="access_denied"), "error"),
])
async def test_hostile_callbacks_are_refused(edit, reason):
    idp = FakeIdp()
    with pytest.raises(FederationFailed, match=reason):
        await _round_trip(idp, _login(idp), edit=edit)


async def test_rfc6749_3_1_a_repeated_response_parameter_is_refused():
    """Two `state` or `code` values: which one a parser takes is not defined, so neither is used."""
    idp = FakeIdp()
    login = _login(idp)
    url, pending = await login.begin("hospital", "i", login=False, max_age=None, now=int(time.time()))
    with pytest.raises(FederationFailed, match="repeated"):
        await login.finish(pending, "hospital", idp.authorize(url), int(time.time()), repeated=True)
    assert idp.token_calls == 0


def test_the_identity_shown_has_no_bidi_or_control_characters():
    from ostiary.server.federation.login import UpstreamIdentity

    shown = UpstreamIdentity("hospital", "s", {"email": "evil\u202egro.elpmaxe@\x00x"}, None, None, ()).label
    assert "\u202e" not in shown and "\x00" not in shown


async def test_a_callback_is_single_use():
    """A replayed callback (same state) is refused even with a fresh code."""
    idp = FakeIdp()
    login = _login(idp)
    url, pending = await login.begin("hospital", "i", login=False, max_age=None, now=int(time.time()))
    answer = idp.authorize(url)
    await login.finish(pending, "hospital", answer, int(time.time()))
    with pytest.raises(FederationFailed, match="already used"):
        await login.finish(pending, "hospital", idp.authorize(url), int(time.time()))


async def test_a_pending_sign_in_of_another_provider_is_refused():
    idp = FakeIdp()
    login = _login(idp)
    _, pending = await login.begin("hospital", "i", login=False, max_age=None, now=int(time.time()))
    with pytest.raises(FederationFailed, match="state"):
        await login.finish(pending, "other", {"state": pending.state, "code": "x"}, int(time.time()))


async def test_an_expired_pending_sign_in_is_refused():
    idp = FakeIdp()
    login = _login(idp)
    url, pending = await login.begin("hospital", "i", login=False, max_age=None, now=int(time.time()) - 3600)
    with pytest.raises(FederationFailed, match="too long"):
        await login.finish(pending, "hospital", idp.authorize(url), int(time.time()))


async def test_a_stale_upstream_session_does_not_meet_prompt_login():
    idp = FakeIdp(auth_time=lambda: int(time.time()) - 7200)  # the upstream reused its old session
    with pytest.raises(FederationFailed, match="prompt=login"):
        await _round_trip(idp, _login(idp), prompt_login=True)


async def test_the_id_token_must_carry_our_nonce():
    idp = FakeIdp(tamper=lambda c: {**c, "nonce": "someone-elses"})
    with pytest.raises(FederationFailed, match="nonce"):
        await _round_trip(idp, _login(idp))


async def test_an_unknown_kid_refetches_the_keys_once_then_fails():
    """Key rotation upstream is picked up; a flood of forged kids does not become a flood of fetches."""
    idp = FakeIdp(header={"kid": "forged"})
    login = _login(idp)
    with pytest.raises(FederationFailed):
        await _round_trip(idp, login)
    fetches = idp.jwks_fetches
    for _ in range(5):
        with pytest.raises(FederationFailed):
            await _round_trip(idp, login)
    assert idp.jwks_fetches == fetches  # within min_refetch: no new fetch


async def test_an_upstream_key_rotation_is_picked_up():
    idp = FakeIdp()
    login = _login(idp)
    await _round_trip(idp, login)
    idp.key = RSAKey.generate_key(2048, private=True, auto_kid=True)
    upstream = login.upstreams["hospital"]
    upstream._min_refetch = 0  # the rotation happened long after the last fetch
    identity, _, _ = await _round_trip(idp, login)
    assert identity.subject == idp.sub


async def test_a_discovery_document_naming_another_issuer_is_refused():
    idp = FakeIdp()
    original = idp.handle

    def lying(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"issuer": "https://evil.example", "authorization_endpoint": "x"})
        return original(request)

    idp.handle = lying  # type: ignore[method-assign]
    with pytest.raises(FederationFailed, match="another issuer"):
        await _login(idp).begin("hospital", "i", login=False, max_age=None, now=0)


async def test_an_oversized_discovery_document_is_refused():
    idp = FakeIdp()
    idp.handle = lambda request: httpx.Response(200, content=b"{" + b" " * (300 * 1024) + b"}")  # type: ignore
    with pytest.raises(FederationFailed, match="more than"):
        await _login(idp).begin("hospital", "i", login=False, max_age=None, now=0)


async def test_discovery_and_keys_are_cached():
    idp = FakeIdp()
    login = _login(idp)
    await asyncio.gather(*(_round_trip(idp, login) for _ in range(3)))
    paths = [r.url.path for r in idp.requests]
    assert paths.count("/.well-known/openid-configuration") == 1 and paths.count("/jwks") == 1


async def test_oidc_5_3_2_userinfo_about_another_subject_is_refused():
    idp = FakeIdp(userinfo_sub="someone-else")
    with pytest.raises(FederationFailed, match="another subject"):
        await _round_trip(idp, _login(idp))


async def test_profile_claims_come_from_userinfo_when_the_id_token_has_none():
    idp = FakeIdp()
    idp.tamper = lambda c: {k: v for k, v in c.items() if k not in ("email", "name")}  # OIDC Core §5.4
    identity, _, _ = await _round_trip(idp, _login(idp))
    assert identity.profile["email"] == "someone@idp.example"
    identity, _, _ = await _round_trip(idp, _login(idp, userinfo=False))
    assert "email" not in identity.profile


async def test_untrusted_amr_and_acr_are_ignored_and_never_multi_factor():
    idp = FakeIdp(claims={"amr": ["pwd", "otp", "mfa"], "acr": "phrh"})
    identity, _, _ = await _round_trip(idp, _login(idp))
    config = FederationProvider(id="hospital", issuer=IDP, client_id=CLIENT_ID)
    proof = federated_proof(identity, "user-1", config, int(time.time()))
    assert proof.amr == ("fed",) and proof.classes == frozenset({"federated"}) and proof.acr is None
    assert proof.time == identity.auth_time


async def test_trusted_amr_and_acr_are_taken():
    idp = FakeIdp(claims={"amr": ["pwd", "otp", "mfa", "made-up"], "acr": "phr"})
    identity, _, _ = await _round_trip(idp, _login(idp, trust_amr=True, trust_acr=True))
    config = FederationProvider(id="hospital", issuer=IDP, client_id=CLIENT_ID, trust_amr=True, trust_acr=True)
    proof = federated_proof(identity, "user-1", config, int(time.time()))
    assert proof.amr == ("fed", "pwd", "otp")  # unregistered values dropped; mfa is recomputed
    assert proof.classes == frozenset({"knowledge", "possession"}) and proof.acr == "phr"


def test_a_pending_sign_in_survives_its_cookie_round_trip_and_rejects_garbage():
    pending = PendingLogin("hospital", "s", "n", "v", "i", 1, True, 60)
    assert PendingLogin.from_dict(orjson.loads(orjson.dumps(pending.to_dict()))) == pending
    assert PendingLogin.from_dict({"provider": "x"}) is None


@pytest.mark.parametrize(("secret", "methods", "headers", "form"), [
    ("", ("client_secret_basic",), {}, {"client_id": "a b"}),  # public client: PKCE alone (RFC 6749 §3.2.1)
    ("s:e&t", ("client_secret_basic", "client_secret_post"),
     {"Authorization": "Basic " + base64.b64encode(b"a%20b:s%3Ae%26t").decode()}, {}),  # RFC 6749 §2.3.1
    ("s:e&t", ("private_key_jwt",), {"Authorization": "Basic " + base64.b64encode(b"a%20b:s%3Ae%26t").decode()}, {}),
    ("s:e&t", ("client_secret_post",), {}, {"client_id": "a b", "client_secret": "s:e&t"}),
])
def test_rfc6749_2_3_1_client_authentication_at_the_upstream_token_endpoint(secret, methods, headers, form):
    """The method the upstream advertises; Basic form-urlencodes the id and secret, so a ':' in either
    cannot shift where the id ends."""
    from ostiary.server.federation.login import _client_auth

    config = FederationProvider(id="hospital", issuer=IDP, client_id="a b", client_secret=secret)
    got_headers: dict[str, str] = {}
    got_form: dict[str, str] = {}
    _client_auth(config, methods).apply("https://idp.example/token", got_headers, got_form)
    assert (got_headers, got_form) == (headers, form)


async def test_concurrent_unknown_kids_fetch_the_keys_once():
    """A burst of callbacks with forged kids at the same moment (they all miss the cache before any fetch
    returns) still costs the upstream one JWKS request within min_refetch, not one per request."""
    idp = FakeIdp()

    async def slow(request: httpx.Request) -> httpx.Response:  # the upstream takes a moment to answer
        await asyncio.sleep(0.01)
        return idp.handle(request)

    upstream = UpstreamProvider(FederationProvider(id="hospital", issuer=idp.issuer, client_id=CLIENT_ID),
                                httpx.AsyncClient(transport=httpx.MockTransport(slow)))
    await upstream.keys(None)
    upstream._metadata = upstream._keys = None  # both caches expired, so the discovery is fetched again too
    await asyncio.gather(*(upstream.keys(f"forged-{i}") for i in range(5)))
    assert idp.jwks_fetches == 2
