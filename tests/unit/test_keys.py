"""Signing keys: generation, RFC 7638 kid, loading PEM / DER / X.509 / PKCS#12, JWKS publication."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ostiary import jwt
from ostiary.keys import (
    ASYMMETRIC_ALGS,
    KeyError_,
    SigningKey,
    alg_for_key,
    b64url,
    certificate_thumbprint,
    generate_private_key,
    import_jwk,
    jwks_document,
    load_certificates,
    load_private_key,
    private_key_pem,
    self_signed_certificate,
    signing_key_from_pem,
    signing_key_from_pkcs12,
)

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "rfc7638.json").read_text())["vectors"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
        fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
        encoding: serialization.Encoding = serialization.Encoding.PEM,
        passphrase: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, fmt, enc)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    key = generate_private_key("RS256")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    key = generate_private_key("ES256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


# -- generation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC_ALGS)
def test_generate_each_alg_signs_and_verifies(alg: str) -> None:
    key = SigningKey.generate(alg)
    assert key.alg == alg and key.status == "active"
    assert alg_for_key(key.jwk) == {"RS": "RS256", "PS": "RS256"}.get(alg[:2], alg)
    token = jwt.sign({"sub": "x", "exp": int(time.time()) + 60}, key)
    verified = jwt.verify(token, import_jwk(key.public_jwk()), algorithms=[alg])
    assert verified.header["kid"] == key.kid
    assert verified.claims["sub"] == "x"


@pytest.mark.parametrize(("alg", "expected"), [
    ("ES256", ec.SECP256R1), ("ES384", ec.SECP384R1), ("ES512", ec.SECP521R1),
])
def test_generated_ec_curve_matches_alg(alg: str, expected: type[ec.EllipticCurve]) -> None:
    key = generate_private_key(alg)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, expected)


def test_generated_rsa_is_2048_bits(rsa_key: rsa.RSAPrivateKey) -> None:
    assert rsa_key.key_size == 2048


def test_generate_unknown_alg() -> None:
    with pytest.raises(KeyError_, match="unsupported signing algorithm"):
        generate_private_key("HS256")


# -- kid = RFC 7638 thumbprint ------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["section"] for v in VECTORS])
def test_rfc7638_thumbprint_vector(vector: dict[str, object]) -> None:
    jwk = vector["jwk"]
    assert isinstance(jwk, dict)
    assert import_jwk(jwk).thumbprint() == vector["thumbprint_sha256"]
    # the same by hand: required members only, sorted, no whitespace (RFC 7638 §3.2, §3.3)
    members = vector["required_members"]
    assert isinstance(members, list)
    canonical = json.dumps({m: jwk[m] for m in sorted(members)}, separators=(",", ":"))
    assert b64url(hashlib.sha256(canonical.encode()).digest()) == vector["thumbprint_sha256"]


def test_kid_is_the_thumbprint_and_stable_across_formats(rsa_key: rsa.RSAPrivateKey) -> None:
    key = signing_key_from_pem(pem(rsa_key))
    public = key.public_jwk()
    canonical = json.dumps({m: public[m] for m in ("e", "kty", "n")}, separators=(",", ":"))
    assert key.kid == b64url(hashlib.sha256(canonical.encode()).digest())
    der = signing_key_from_pem(pem(rsa_key, encoding=serialization.Encoding.DER))
    pkcs1 = signing_key_from_pem(pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL))
    assert der.kid == pkcs1.kid == key.kid


# -- loading PEM / DER --------------------------------------------------------------------------


def test_load_pkcs8_pem(ec_key: ec.EllipticCurvePrivateKey) -> None:
    data = pem(ec_key)
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = signing_key_from_pem(data)
    assert key.alg == "ES256"


def test_load_sec1_ec_pem(ec_key: ec.EllipticCurvePrivateKey) -> None:
    data = pem(ec_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert data.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert signing_key_from_pem(data).alg == "ES256"


def test_load_pkcs1_rsa_pem(rsa_key: rsa.RSAPrivateKey) -> None:
    data = pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert signing_key_from_pem(data).alg == "RS256"
    assert signing_key_from_pem(data, alg="PS384").alg == "PS384"


def test_load_ed25519_pem() -> None:
    assert signing_key_from_pem(pem(ed25519.Ed25519PrivateKey.generate())).alg == "EdDSA"


def test_load_der(ec_key: ec.EllipticCurvePrivateKey) -> None:
    key = load_private_key(pem(ec_key, encoding=serialization.Encoding.DER))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.private_numbers() == ec_key.private_numbers()


def test_encrypted_pem_right_passphrase(ec_key: ec.EllipticCurvePrivateKey) -> None:
    data = pem(ec_key, passphrase=b"correct horse")
    assert b"ENCRYPTED" in data
    key = signing_key_from_pem(data, passphrase=b"correct horse")
    assert key.kid == signing_key_from_pem(pem(ec_key)).kid


def test_encrypted_pem_wrong_passphrase(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(KeyError_, match="wrong passphrase"):
        signing_key_from_pem(pem(ec_key, passphrase=b"correct horse"), passphrase=b"battery staple")


def test_encrypted_pem_missing_passphrase(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(KeyError_, match="passphrase"):
        signing_key_from_pem(pem(ec_key, passphrase=b"correct horse"))


def test_passphrase_for_unencrypted_key(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(KeyError_, match="passphrase"):
        signing_key_from_pem(pem(ec_key), passphrase=b"unneeded")


@pytest.mark.parametrize("data", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_garbage_is_a_key_error(data: bytes) -> None:
    with pytest.raises(KeyError_):
        load_private_key(data)


def test_unsupported_key_type() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed448

    with pytest.raises(KeyError_, match="only EC, RSA and Ed25519"):
        load_private_key(pem(ed448.Ed448PrivateKey.generate()))


# -- algorithm must fit the key -----------------------------------------------------------------


@pytest.mark.parametrize(("key_alg", "alg", "message"), [
    ("ES256", "ES384", "ES384 needs an EC key on secp384r1"),
    ("ES256", "RS256", "RS256 needs an RSA key"),
    ("RS256", "ES256", "ES256 needs an EC key"),
    ("RS256", "EdDSA", "EdDSA needs an Ed25519 key"),
    ("EdDSA", "PS256", "PS256 needs an RSA key"),
    ("ES256", "HS256", "unsupported signing algorithm"),
    ("ES256", "none", "unsupported signing algorithm"),
])
def test_alg_that_does_not_fit_the_key(key_alg: str, alg: str, message: str) -> None:
    with pytest.raises(KeyError_, match=message):
        signing_key_from_pem(private_key_pem(generate_private_key(key_alg)), alg=alg)


def test_rsa_below_2048_bits_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyError_, match="at least 2048 bits"):
        signing_key_from_pem(pem(small))
    with pytest.raises(KeyError_, match="at least 2048 bits"):
        signing_key_from_pem(pem(small), alg="PS256")


# -- X.509 --------------------------------------------------------------------------------------


def test_certificate_gives_x5c_and_x5t_s256(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = self_signed_certificate(ec_key, "signer.example", dns_names=["signer.example"])
    key = signing_key_from_pem(pem(ec_key), cert_pem(cert))
    public = key.public_jwk()
    der = cert.public_bytes(serialization.Encoding.DER)
    assert public["x5c"] == [base64.b64encode(der).decode()]  # standard base64, not base64url (RFC 7517 §4.7)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert public["x5t#S256"] == expected == certificate_thumbprint(cert)
    assert public["kid"] == key.kid and public["alg"] == "ES256" and public["use"] == "sig"


def test_certificate_chain_leaf_first(ec_key: ec.EllipticCurvePrivateKey) -> None:
    leaf = self_signed_certificate(ec_key, "leaf")
    other = self_signed_certificate(generate_private_key("ES256"), "ca")
    key = signing_key_from_pem(pem(ec_key), cert_pem(leaf) + cert_pem(other))
    x5c = key.public_jwk()["x5c"]
    assert isinstance(x5c, list) and len(x5c) == 2
    assert base64.b64decode(x5c[0]) == leaf.public_bytes(serialization.Encoding.DER)


def test_der_certificate(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = self_signed_certificate(ec_key, "der")
    loaded = load_certificates(cert.public_bytes(serialization.Encoding.DER))
    assert loaded == [cert]


def test_certificate_not_matching_the_key(ec_key: ec.EllipticCurvePrivateKey) -> None:
    stranger = self_signed_certificate(generate_private_key("ES256"), "someone else")
    with pytest.raises(KeyError_, match="does not belong to the private key"):
        signing_key_from_pem(pem(ec_key), cert_pem(stranger))


def test_unreadable_certificate(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(KeyError_, match=r"X\.509"):
        signing_key_from_pem(pem(ec_key), b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# -- PKCS#12 ------------------------------------------------------------------------------------


def p12(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cert: x509.Certificate,
        passphrase: bytes | None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"ostiary", key, cert, None, enc)


@pytest.mark.parametrize("passphrase", [None, b"p12-pass"])
def test_pkcs12(rsa_key: rsa.RSAPrivateKey, passphrase: bytes | None) -> None:
    cert = self_signed_certificate(rsa_key, "p12")
    key = signing_key_from_pkcs12(p12(rsa_key, cert, passphrase), passphrase=passphrase)
    assert key.alg == "RS256"
    assert key.kid == signing_key_from_pem(pem(rsa_key)).kid
    assert key.public_jwk()["x5t#S256"] == certificate_thumbprint(cert)


def test_pkcs12_wrong_passphrase(ec_key: ec.EllipticCurvePrivateKey) -> None:
    data = p12(ec_key, self_signed_certificate(ec_key, "p12"), b"right")
    with pytest.raises(KeyError_, match="PKCS#12"):
        signing_key_from_pkcs12(data, passphrase=b"wrong")
    with pytest.raises(KeyError_, match="PKCS#12"):
        signing_key_from_pkcs12(data)


def test_pkcs12_alg_must_fit(ec_key: ec.EllipticCurvePrivateKey) -> None:
    data = p12(ec_key, self_signed_certificate(ec_key, "p12"), None)
    with pytest.raises(KeyError_, match="needs an RSA key"):
        signing_key_from_pkcs12(data, alg="RS256")


# -- JWKS ---------------------------------------------------------------------------------------


def test_jwks_document_has_no_private_members(ec_key: ec.EllipticCurvePrivateKey) -> None:
    keys = [SigningKey.generate(alg) for alg in ("ES256", "RS256", "PS256", "EdDSA")]
    keys.append(signing_key_from_pem(pem(ec_key), cert_pem(self_signed_certificate(ec_key, "x"))))
    doc = jwks_document(keys)
    assert [k["kid"] for k in doc["keys"]] == [k.kid for k in keys]
    for published in doc["keys"]:
        assert not PRIVATE_MEMBERS & set(published), published
        assert published["use"] == "sig"
        assert "key_ops" not in published
    # the published JWK imports as a public key that verifies what the private key signed
    token = jwt.sign({"exp": int(time.time()) + 60}, keys[0])
    assert jwt.verify(token, import_jwk(doc["keys"][0])).claims["exp"] > time.time()


def test_private_pem_round_trip(ec_key: ec.EllipticCurvePrivateKey) -> None:
    key = signing_key_from_pem(pem(ec_key), cert_pem(self_signed_certificate(ec_key, "rt")))
    again = signing_key_from_pem(key.private_pem(), key.certificates_pem())
    assert again.kid == key.kid and again.public_jwk() == key.public_jwk()


@pytest.mark.parametrize("data", [{"kty": "XYZ"}, {"kty": "EC", "crv": "P-256"}, {}])
def test_import_malformed_jwk(data: dict[str, object]) -> None:
    with pytest.raises(KeyError_):
        import_jwk(data)
