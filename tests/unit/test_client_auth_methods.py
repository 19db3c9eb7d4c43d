"""Client authentication methods (RFC 6749 §2.3.1, RFC 7523) and PKCE (RFC 7636)."""

from __future__ import annotations

import base64
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ostiary import jwt
from ostiary.client import ClientSecretBasic, ClientSecretJwt, ClientSecretPost, Pkce, PrivateKeyJwt, Secret, s256
from ostiary.keys import (
    SigningKey,
    certificate_thumbprint,
    key_set,
    private_key_pem,
    self_signed_certificate,
)

ENDPOINT = "https://as.example/token"


def test_rfc6749_2_3_1_basic_form_urlencodes_id_and_secret():
    headers: dict[str, str] = {}
    form: dict[str, str] = {}
    ClientSecretBasic("my client", Secret("p@ss:wörd")).apply(ENDPOINT, headers, form)
    user, _, password = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode().partition(":")
    assert (unquote(user), unquote(password)) == ("my client", "p@ss:wörd")
    assert ":" not in password and form == {}


def test_rfc6749_2_3_1_client_secret_post_puts_credentials_in_the_body():
    headers: dict[str, str] = {}
    form: dict[str, str] = {}
    ClientSecretPost("c", Secret("s")).apply(ENDPOINT, headers, form)
    assert form == {"client_id": "c", "client_secret": "s"} and headers == {}


def test_secret_reprs_hide_the_value():
    auth = ClientSecretBasic("c", Secret("hunter2"))
    assert "hunter2" not in repr(auth) and "hunter2" not in str(auth.client_secret)
    assert "hunter2" not in f"{auth.client_secret}"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(auth.client_secret)


def test_rfc7523_3_private_key_jwt_assertion_with_x5t_s256():
    private = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed_certificate(private, "client-1")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    auth = PrivateKeyJwt.from_pem("client-1", private_key_pem(private), cert_pem)
    headers: dict[str, str] = {}
    form: dict[str, str] = {}
    auth.apply(ENDPOINT, headers, form)
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["client_id"] == "client-1"
    verified = jwt.verify(form["client_assertion"], key_set([auth.key]), audience=ENDPOINT, issuer="client-1")
    assert verified.header["x5t#S256"] == certificate_thumbprint(cert)
    assert verified.claims["sub"] == "client-1" and verified.claims["jti"]
    assert verified.claims["exp"] - verified.claims["iat"] == 60
    assert "PRIVATE" not in repr(auth)
    second: dict[str, str] = {}
    auth.apply(ENDPOINT, {}, second)
    assert jwt.decode_unverified(second["client_assertion"]).claims["jti"] != verified.claims["jti"]


def test_rfc7523_private_key_jwt_refuses_a_certificate_of_another_key():
    from ostiary.keys import KeyError_

    key = SigningKey.generate("ES256")
    other = ec.generate_private_key(ec.SECP256R1())
    cert_pem = self_signed_certificate(other, "x").public_bytes(serialization.Encoding.PEM)
    with pytest.raises(KeyError_):
        PrivateKeyJwt.from_pem("c", key.private_pem(), cert_pem)


def test_rfc7636_appendix_b_s256_challenge():
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_4_1_generated_verifier_is_43_to_128_unreserved_chars():
    pkce = Pkce.generate()
    assert 43 <= len(pkce.code_verifier) <= 128
    assert set(pkce.code_verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert pkce.code_challenge == s256(pkce.code_verifier) and pkce.code_challenge_method == "S256"
    assert pkce.code_verifier not in repr(pkce)


def test_oidc_core_9_client_secret_jwt_assertion_is_macd_with_the_secret_which_never_travels():
    from joserfc.jwk import KeySet, OctKey

    secret = "s3cret-" + "k" * 40
    auth = ClientSecretJwt("client-1", Secret(secret), alg="HS384")
    headers: dict[str, str] = {}
    form: dict[str, str] = {}
    auth.apply(ENDPOINT, headers, form)
    assert headers == {} and secret not in str(form) and secret not in repr(auth)
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    verified = jwt.verify(form["client_assertion"], KeySet([OctKey.import_key(secret.encode())]),
                          audience=ENDPOINT, issuer="client-1", algorithms=["HS384"])
    assert verified.header["alg"] == "HS384" and verified.claims["sub"] == "client-1" and verified.claims["jti"]
    with pytest.raises(jwt.JWTInvalid):  # another secret does not verify it
        jwt.verify(form["client_assertion"], KeySet([OctKey.import_key(b"other-" + b"k" * 40)]),
                   audience=ENDPOINT, issuer="client-1", algorithms=["HS384"])


def test_client_secret_jwt_refuses_a_non_hmac_alg():
    with pytest.raises(ValueError, match="HS256"):
        ClientSecretJwt("client-1", Secret("x" * 32), alg="RS256")
