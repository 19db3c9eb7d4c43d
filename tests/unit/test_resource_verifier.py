"""TokenVerifier against a real issuer on 127.0.0.1: RFC 9068 §4 validation and RFC 8725 rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from ostiary.keys import SigningKey
from ostiary.resource import InvalidToken, IssuerUnavailable, Principal, TokenVerifier
from tests.unit._guard_helpers import AUDIENCE, IssuerServer, access_token, free_port, raw_es256_token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def rs256() -> SigningKey:
    return SigningKey.generate("RS256")


@pytest.fixture
def issuer(es256: SigningKey, rs256: SigningKey) -> Iterator[IssuerServer]:
    with IssuerServer([es256, rs256]) as server:
        yield server


@pytest.fixture
def verifier(issuer: IssuerServer) -> Iterator[TokenVerifier]:
    v = TokenVerifier(issuer.issuer, AUDIENCE, timeout=1.0, leeway=5)
    yield v
    v.close()


def test_rfc9068_4_valid_es256_token_gives_principal(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    token = access_token(es256, issuer.issuer, scope="read write")
    principal = verifier.verify(token)
    assert isinstance(principal, Principal)
    assert principal.subject == "user-1" and principal.client_id == "client-1"
    assert principal.scopes == {"read", "write"}
    assert principal.token == token and token not in repr(principal)


def test_rfc9068_4_valid_rs256_token(verifier: TokenVerifier, issuer: IssuerServer, rs256: SigningKey):
    assert verifier.verify(access_token(rs256, issuer.issuer)).subject == "user-1"


def test_rfc8414_jwks_is_fetched_once_and_cached(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    for _ in range(20):
        verifier.verify(access_token(es256, issuer.issuer))
    assert issuer.hits["/jwks"] == 1
    assert issuer.hits["/.well-known/oauth-authorization-server"] == 1


def test_oidc_discovery_is_the_fallback(issuer: IssuerServer, es256: SigningKey):
    issuer.oidc_only = True
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=1.0)
    assert verifier.verify(access_token(es256, issuer.issuer)).subject == "user-1"
    assert issuer.hits["/.well-known/openid-configuration"] == 1


def test_rfc7519_4_1_4_expired_token_is_refused(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    now = int(time.time())
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(access_token(es256, issuer.issuer, iat=now - 600, exp=now - 60))


def test_rfc7519_4_1_4_small_clock_skew_is_tolerated(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    now = int(time.time())
    assert verifier.verify(access_token(es256, issuer.issuer, iat=now - 600, exp=now - 2)).subject == "user-1"


def test_rfc7519_4_1_5_not_yet_valid_token_is_refused(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    with pytest.raises(InvalidToken, match="not yet valid"):
        verifier.verify(access_token(es256, issuer.issuer, nbf=int(time.time()) + 120))


def test_rfc9068_4_wrong_audience_is_refused(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    with pytest.raises(InvalidToken, match="audience"):
        verifier.verify(access_token(es256, issuer.issuer, audience="https://other.example"))


def test_rfc9068_4_audience_list_containing_ours_is_accepted(
    verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey
):
    token = access_token(es256, issuer.issuer, audience=["https://other.example", AUDIENCE])
    assert verifier.verify(token).subject == "user-1"


def test_rfc9068_4_wrong_issuer_is_refused(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    with pytest.raises(InvalidToken, match="issuer"):
        verifier.verify(access_token(es256, "https://evil.example"))


def test_rfc9068_2_2_missing_required_claim_is_refused(
    verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey
):
    with pytest.raises(InvalidToken, match="client_id"):
        verifier.verify(access_token(es256, issuer.issuer, client_id=None))


def test_rfc9068_4_typ_must_be_at_jwt(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    with pytest.raises(InvalidToken, match="typ"):
        verifier.verify(access_token(es256, issuer.issuer, typ="JWT"))
    with pytest.raises(InvalidToken, match="typ"):
        verifier.verify(access_token(es256, issuer.issuer, typ=None))
    assert verifier.verify(access_token(es256, issuer.issuer, typ="application/at+jwt")).subject == "user-1"


def test_plain_jwt_typ_accepted_when_configured(issuer: IssuerServer, es256: SigningKey):
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, accept_plain_jwt=True, timeout=1.0)
    assert verifier.verify(access_token(es256, issuer.issuer, typ="JWT")).subject == "user-1"
    assert verifier.verify(access_token(es256, issuer.issuer, typ=None)).subject == "user-1"
    with pytest.raises(InvalidToken, match="typ"):
        verifier.verify(access_token(es256, issuer.issuer, typ="dpop+jwt"))


def test_unknown_kid_refetches_exactly_once_then_401(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    verifier.verify(access_token(es256, issuer.issuer))
    assert issuer.hits["/jwks"] == 1
    stranger = SigningKey.generate("ES256")
    for _ in range(50):  # a flood of unknown kids must not hammer the issuer
        with pytest.raises(InvalidToken, match="no key"):
            verifier.verify(access_token(stranger, issuer.issuer))
    assert issuer.hits["/jwks"] == 2


def test_rotated_key_is_found_by_refetch(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    verifier.verify(access_token(es256, issuer.issuer))
    new_key = SigningKey.generate("ES256")
    issuer.keys = [*issuer.keys, new_key]
    assert verifier.verify(access_token(new_key, issuer.issuer)).subject == "user-1"
    assert issuer.hits["/jwks"] == 2


def test_rfc8725_3_1_alg_none_is_refused(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    claims = json.loads(base64.urlsafe_b64decode(access_token(es256, issuer.issuer).split(".")[1] + "=="))
    header = {"alg": "none", "typ": "at+jwt", "kid": es256.kid}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
    with pytest.raises(InvalidToken, match="not allowed"):
        verifier.verify(token)
    assert issuer.hits["/jwks"] == 0  # refused before any key is looked at


def test_rfc8725_2_1_hs256_with_rsa_public_key_as_secret_is_refused(
    verifier: TokenVerifier, issuer: IssuerServer, rs256: SigningKey
):
    # The classic algorithm confusion attack: HMAC keyed with the issuer's *public* RSA key.
    public_pem = rs256.jwk.public_key.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = json.loads(base64.urlsafe_b64decode(access_token(rs256, issuer.issuer).split(".")[1] + "=="))
    header = {"alg": "HS256", "typ": "at+jwt", "kid": rs256.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="not allowed"):
        verifier.verify(f"{signing_input}.{b64(mac)}")


def test_rfc8725_3_1_hmac_algorithms_cannot_be_configured(issuer: IssuerServer):
    with pytest.raises(ValueError, match="HS256"):
        TokenVerifier(issuer.issuer, AUDIENCE, algorithms=["ES256", "HS256"])
    with pytest.raises(ValueError, match="none"):
        TokenVerifier(issuer.issuer, AUDIENCE, algorithms=["none"])


def test_rfc8725_3_1_alg_must_fit_the_key(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    # An ES256 key's kid with alg RS256: the key cannot verify that algorithm
    token = access_token(es256, issuer.issuer)
    _header, payload, sig = token.split(".")
    forged_header = b64(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": es256.kid}).encode())
    with pytest.raises(InvalidToken):
        verifier.verify(f"{forged_header}.{payload}.{sig}")


def test_rfc7515_5_2_tampered_payload_is_refused(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    header, payload, sig = access_token(es256, issuer.issuer, scope="read").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "read admin"
    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(f"{header}.{b64(json.dumps(claims).encode())}.{sig}")


def test_raw_signing_helper_makes_valid_tokens(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    claims = json.loads(base64.urlsafe_b64decode(access_token(es256, issuer.issuer).split(".")[1] + "=="))
    token = raw_es256_token(es256, {"alg": "ES256", "typ": "at+jwt", "kid": es256.kid}, claims)
    assert verifier.verify(token).subject == "user-1"


def test_rfc7515_5_2_truncated_signature_is_refused(verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey):
    token = access_token(es256, issuer.issuer)
    with pytest.raises(InvalidToken):
        verifier.verify(token[:-4])


def test_rfc7515_4_1_11_unknown_crit_header_is_refused(
    verifier: TokenVerifier, issuer: IssuerServer, es256: SigningKey
):
    claims = json.loads(base64.urlsafe_b64decode(access_token(es256, issuer.issuer).split(".")[1] + "=="))
    header = {"alg": "ES256", "typ": "at+jwt", "kid": es256.kid, "crit": ["urn:example:x"], "urn:example:x": 1}
    token = raw_es256_token(es256, header, claims)
    with pytest.raises(InvalidToken, match="critical"):
        verifier.verify(token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9.e30.!!!", "é.é.é"])
def test_rfc6750_3_1_malformed_tokens_are_invalid_token(verifier: TokenVerifier, garbage: str):
    with pytest.raises(InvalidToken):
        verifier.verify(garbage)


def test_jwks_endpoint_down_is_issuer_unavailable_quickly(es256: SigningKey):
    issuer = f"http://127.0.0.1:{free_port()}"
    verifier = TokenVerifier(issuer, AUDIENCE, jwks_uri=f"{issuer}/jwks", timeout=0.5)
    start = time.monotonic()
    with pytest.raises(IssuerUnavailable, match="unreachable"):
        verifier.verify(access_token(es256, issuer))
    # a second request inside the back-off window fails fast, without another connection attempt
    with pytest.raises(IssuerUnavailable):
        verifier.verify(access_token(es256, issuer))
    assert time.monotonic() - start < 2.0


def test_jwks_endpoint_that_hangs_times_out(issuer: IssuerServer, es256: SigningKey):
    issuer.mode = "hang"
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(IssuerUnavailable):
        verifier.verify(access_token(es256, issuer.issuer))
    assert time.monotonic() - start < 2.0


def test_jwks_endpoint_error_is_issuer_unavailable(issuer: IssuerServer, es256: SigningKey):
    issuer.mode = "error"
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=0.5)
    with pytest.raises(IssuerUnavailable, match="500"):
        verifier.verify(access_token(es256, issuer.issuer))


def test_stale_keys_keep_working_while_the_issuer_is_down(issuer: IssuerServer, es256: SigningKey):
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=0.5, jwks_max_age=0.0)
    verifier.verify(access_token(es256, issuer.issuer))
    issuer.mode = "error"
    assert verifier.verify(access_token(es256, issuer.issuer)).subject == "user-1"


def test_rfc8414_3_3_metadata_for_another_issuer_is_refused(issuer: IssuerServer, es256: SigningKey):
    verifier = TokenVerifier(issuer.issuer + "/tenant", AUDIENCE, timeout=0.5)
    with pytest.raises(IssuerUnavailable, match="discovery"):
        verifier.verify(access_token(es256, issuer.issuer + "/tenant"))


async def test_async_verify_and_unknown_kid_single_refetch(issuer: IssuerServer, es256: SigningKey):
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=1.0)
    try:
        assert (await verifier.averify(access_token(es256, issuer.issuer))).subject == "user-1"
        stranger = SigningKey.generate("ES256")
        for _ in range(20):
            with pytest.raises(InvalidToken):
                await verifier.averify(access_token(stranger, issuer.issuer))
        assert issuer.hits["/jwks"] == 2
    finally:
        await verifier.aclose()


async def test_async_jwks_hang_times_out(issuer: IssuerServer, es256: SigningKey):
    issuer.mode = "hang"
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(IssuerUnavailable):
        await verifier.averify(access_token(es256, issuer.issuer))
    assert time.monotonic() - start < 2.0
    await verifier.aclose()


def test_eddsa_and_ps256_tokens_verify(issuer: IssuerServer):
    ed = SigningKey.generate("EdDSA")
    ps = SigningKey.generate("PS256")
    issuer.keys = [ed, ps]
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=1.0)
    assert verifier.verify(access_token(ed, issuer.issuer)).subject == "user-1"
    assert verifier.verify(access_token(ps, issuer.issuer)).subject == "user-1"


def test_verified_token_cache_rechecks_exp(issuer: IssuerServer, es256: SigningKey):
    clock = {"now": time.time()}
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=1.0, leeway=0, clock=lambda: clock["now"])
    token = access_token(es256, issuer.issuer, lifetime=60)
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # served from the cache
    clock["now"] += 61
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_verified_token_cache_is_flushed_when_the_key_set_changes(issuer: IssuerServer, es256: SigningKey):
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=1.0, jwks_max_age=3600)
    token = access_token(es256, issuer.issuer)
    first = verifier.verify(token)
    issuer.keys = [k for k in issuer.keys if k.kid != es256.kid]  # the issuer withdraws the key
    verifier.jwks.max_age = 0.0  # force the next lookup to refetch
    with pytest.raises(InvalidToken, match="no key"):
        verifier.verify(access_token(es256, issuer.issuer))
    with pytest.raises(InvalidToken, match="no key"):
        verifier.verify(token)  # the remembered result went with the old key set
    assert first.subject == "user-1"


def test_verified_token_cache_can_be_disabled(issuer: IssuerServer, es256: SigningKey):
    verifier = TokenVerifier(issuer.issuer, AUDIENCE, timeout=1.0, verified_cache_size=0)
    token = access_token(es256, issuer.issuer)
    assert verifier.verify(token) is not verifier.verify(token)
