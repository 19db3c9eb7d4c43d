"""ostiary.jwt: the claim rules applied everywhere (RFC 7519 §4.1, RFC 8725)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc.jwk import OctKey

from ostiary.jwt import DEFAULT_LEEWAY, JWTInvalid, decode_unverified, sign, verify
from ostiary.keys import SigningKey, import_jwk

NOW = 1_700_000_000
ISS = "https://auth.example.com"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def public(key: SigningKey) -> Any:
    return import_jwk(key.public_jwk())


def claims(**extra: Any) -> dict[str, Any]:
    return {"iss": ISS, "sub": "client-1", "aud": "https://api.example.com", "iat": NOW, "exp": NOW + 300,
            **extra}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip(key: SigningKey, public: Any) -> None:
    token = sign(claims(), key, typ="at+jwt")
    got = verify(token, public, issuer=ISS, audience="https://api.example.com", typ="at+jwt", now=NOW)
    assert got.claims == claims()
    assert got.header == {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}


# -- exp / nbf / iat with leeway ----------------------------------------------------------------


def test_exp_within_leeway_is_accepted(key: SigningKey, public: Any) -> None:
    token = sign(claims(exp=NOW - DEFAULT_LEEWAY + 1), key)
    verify(token, public, now=NOW)


def test_exp_beyond_leeway_is_rejected(key: SigningKey, public: Any) -> None:
    token = sign(claims(exp=NOW - DEFAULT_LEEWAY), key)
    with pytest.raises(JWTInvalid, match="expired"):
        verify(token, public, now=NOW)


def test_exp_with_zero_leeway(key: SigningKey, public: Any) -> None:
    token = sign(claims(exp=NOW, iat=NOW - 10), key)
    with pytest.raises(JWTInvalid, match="expired"):
        verify(token, public, now=NOW, leeway=0)
    verify(token, public, now=NOW - 1, leeway=0)


def test_nbf(key: SigningKey, public: Any) -> None:
    verify(sign(claims(nbf=NOW + DEFAULT_LEEWAY), key), public, now=NOW)
    with pytest.raises(JWTInvalid, match="not yet valid"):
        verify(sign(claims(nbf=NOW + DEFAULT_LEEWAY + 1), key), public, now=NOW)


def test_iat_in_the_future(key: SigningKey, public: Any) -> None:
    verify(sign(claims(iat=NOW + DEFAULT_LEEWAY), key), public, now=NOW)
    with pytest.raises(JWTInvalid, match="issued in the future"):
        verify(sign(claims(iat=NOW + 120), key), public, now=NOW, leeway=60)


def test_exp_required_by_default(key: SigningKey, public: Any) -> None:
    body = claims()
    del body["exp"]
    with pytest.raises(JWTInvalid, match="missing claim 'exp'"):
        verify(sign(body, key), public, now=NOW)
    verify(sign(body, key), public, now=NOW, required=())


@pytest.mark.parametrize("value", ["1700000300", True, None, [1]])
def test_time_claims_must_be_numbers(key: SigningKey, public: Any, value: Any) -> None:
    with pytest.raises(JWTInvalid, match="'exp' must be a number"):
        verify(sign(claims(exp=value), key), public, now=NOW)


# -- iss / aud ----------------------------------------------------------------------------------


def test_issuer_exact(key: SigningKey, public: Any) -> None:
    token = sign(claims(), key)
    verify(token, public, issuer=ISS, now=NOW)
    for wrong in (ISS + "/", "https://evil.example", ISS.upper()):
        with pytest.raises(JWTInvalid, match="wrong issuer"):
            verify(token, public, issuer=wrong, now=NOW)
    body = claims()
    del body["iss"]
    with pytest.raises(JWTInvalid, match="wrong issuer"):
        verify(sign(body, key), public, issuer=ISS, now=NOW)


def test_audience_string(key: SigningKey, public: Any) -> None:
    token = sign(claims(aud="https://api.example.com"), key)
    verify(token, public, audience="https://api.example.com", now=NOW)
    verify(token, public, audience=["https://other.example", "https://api.example.com"], now=NOW)
    with pytest.raises(JWTInvalid, match="wrong audience"):
        verify(token, public, audience="https://other.example", now=NOW)


def test_audience_list(key: SigningKey, public: Any) -> None:
    token = sign(claims(aud=["https://a.example", "https://b.example"]), key)
    verify(token, public, audience="https://b.example", now=NOW)
    verify(token, public, audience={"https://c.example", "https://a.example"}, now=NOW)
    with pytest.raises(JWTInvalid, match="wrong audience"):
        verify(token, public, audience="https://c.example", now=NOW)


@pytest.mark.parametrize("aud", [None, 42, ["https://api.example.com", 7], {"x": 1}])
def test_audience_missing_or_malformed(key: SigningKey, public: Any, aud: Any) -> None:
    body = claims(aud=aud)
    if aud is None:
        del body["aud"]
    with pytest.raises(JWTInvalid, match="wrong audience"):
        verify(sign(body, key), public, audience="https://api.example.com", now=NOW)


def test_audience_not_checked_when_not_asked(key: SigningKey, public: Any) -> None:
    verify(sign(claims(aud="anything"), key), public, now=NOW)


# -- typ (RFC 8725 §3.11, RFC 9068 §2.1) --------------------------------------------------------


@pytest.mark.parametrize("header_typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"])
def test_typ_at_jwt_forms_accepted(key: SigningKey, public: Any, header_typ: str) -> None:
    verify(sign(claims(), key, typ=header_typ), public, typ="at+jwt", now=NOW)


@pytest.mark.parametrize("header_typ", ["JWT", "jwt", None, "secevent+jwt", "application/jwt"])
def test_typ_other_values_rejected(key: SigningKey, public: Any, header_typ: str | None) -> None:
    with pytest.raises(JWTInvalid, match="wrong typ"):
        verify(sign(claims(), key, typ=header_typ), public, typ="at+jwt", now=NOW)


def test_typ_collection(key: SigningKey, public: Any) -> None:
    verify(sign(claims(), key, typ="JWT"), public, typ=["at+jwt", "JWT"], now=NOW)


# -- algorithms ---------------------------------------------------------------------------------


def test_alg_not_allowed(key: SigningKey, public: Any) -> None:
    token = sign(claims(), key)
    with pytest.raises(JWTInvalid, match="algorithm 'ES256' is not allowed"):
        verify(token, public, algorithms=["RS256"], now=NOW)


def test_alg_none_rejected(public: Any) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.AAAA"):
        with pytest.raises(JWTInvalid, match="'none' is not allowed"):
            verify(token, public, now=NOW)
        with pytest.raises(JWTInvalid, match="'none' is not allowed"):
            verify(token, public, algorithms=["none", "ES256"], now=NOW)


def test_hmac_not_allowed_by_default(key: SigningKey) -> None:
    secret = OctKey.generate_key(256)
    token = sign(claims(), secret, alg="HS256")
    with pytest.raises(JWTInvalid, match="'HS256' is not allowed"):
        verify(token, secret, now=NOW)
    assert verify(token, secret, algorithms=["HS256"], now=NOW).claims["sub"] == "client-1"


def test_bare_key_needs_alg() -> None:
    with pytest.raises(ValueError, match="alg is required"):
        sign(claims(), OctKey.generate_key(256))


# -- signature ----------------------------------------------------------------------------------


def test_tampered_payload(key: SigningKey, public: Any) -> None:
    header, _, signature = sign(claims(), key).split(".")
    forged = b64(json.dumps(claims(sub="admin")).encode())
    with pytest.raises(JWTInvalid, match="signature does not verify"):
        verify(f"{header}.{forged}.{signature}", public, now=NOW)


def test_tampered_signature(key: SigningKey, public: Any) -> None:
    header, payload, signature = sign(claims(), key).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(JWTInvalid, match="signature does not verify"):
        verify(f"{header}.{payload}.{flipped}", public, now=NOW)


def test_wrong_key(key: SigningKey) -> None:
    other = SigningKey.generate("ES256")
    with pytest.raises(JWTInvalid):
        verify(sign(claims(), key), import_jwk(other.public_jwk()), now=NOW)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!!.###.$$$", "eyJ.eyJ.sig"])
def test_malformed_tokens(public: Any, token: str) -> None:
    with pytest.raises(JWTInvalid):
        verify(token, public, now=NOW)


def test_claims_must_be_an_object(key: SigningKey, public: Any) -> None:
    from joserfc import jws

    token = jws.serialize_compact({"alg": "ES256"}, b"[1, 2]", key.jwk, algorithms=["ES256"])
    with pytest.raises(JWTInvalid, match="not a JSON object"):
        verify(token, public, now=NOW)


def test_decode_unverified(key: SigningKey) -> None:
    got = decode_unverified(sign(claims(), key, typ="at+jwt"))
    assert got.header["typ"] == "at+jwt" and got.claims["sub"] == "client-1"
    with pytest.raises(JWTInvalid):
        decode_unverified("not-a-jwt")
