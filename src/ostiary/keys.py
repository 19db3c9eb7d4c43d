"""Signing keys: generate, load (PEM, encrypted PEM, X.509, PKCS#12, JWK), publish as JWKS.

A key's ``kid`` is its RFC 7638 thumbprint, so the same key always has the same id wherever
it is loaded. Keys carry the X.509 chain they came with, published as ``x5c`` and ``x5t#S256``
(RFC 7517 §4.7, §4.9).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

__all__ = [
    "ASYMMETRIC_ALGS",
    "HMAC_ALGS",
    "AsymmetricKey",
    "KeyError_",
    "KeyStatus",
    "SigningKey",
    "alg_for_key",
    "b64url",
    "certificate_thumbprint",
    "generate_private_key",
    "import_jwk",
    "jwks_document",
    "key_set",
    "load_certificates",
    "load_pkcs12",
    "load_private_key",
    "private_key_pem",
    "self_signed_certificate",
    "signing_key_from_pem",
    "signing_key_from_pkcs12",
]

AsymmetricKey = ECKey | RSAKey | OKPKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
KeyStatus = Literal["active", "next", "retired"]

ASYMMETRIC_ALGS: tuple[str, ...] = (
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
)
HMAC_ALGS: tuple[str, ...] = ("HS256", "HS384", "HS512")

_CURVE_FOR_ALG = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
_ALG_FOR_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class KeyError_(ValueError):
    """A key or certificate could not be loaded or does not fit; the message says why."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_private_key(alg: str) -> PrivateKey:
    """A new private key for ``alg`` (RSA keys are 2048 bits; EC keys on the alg's curve)."""
    if alg in _CURVE_FOR_ALG:
        return ec.generate_private_key(_CURVE_FOR_ALG[alg])
    if alg.startswith(("RS", "PS")) and alg in ASYMMETRIC_ALGS:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyError_(f"unsupported signing algorithm {alg!r}")


def alg_for_key(key: PrivateKey | AsymmetricKey) -> str:
    """The usual JWS algorithm for a key: ES256/384/512 by curve, RS256 for RSA, EdDSA for Ed25519."""
    raw = key.private_key or key.public_key if isinstance(key, ECKey | RSAKey | OKPKey) else key
    if isinstance(raw, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        alg = _ALG_FOR_CURVE.get(raw.curve.name)
        if alg is None:
            raise KeyError_(f"unsupported curve {raw.curve.name}")
        return alg
    if isinstance(raw, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    if isinstance(raw, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise KeyError_("unsupported key type")


def _check_alg_fits(alg: str, key: PrivateKey) -> None:
    if alg in _CURVE_FOR_ALG:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or _ALG_FOR_CURVE.get(key.curve.name) != alg:
            raise KeyError_(f"{alg} needs an EC key on {_CURVE_FOR_ALG[alg].name}")
    elif alg.startswith(("RS", "PS")):
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyError_(f"{alg} needs an RSA key")
        if key.key_size < 2048:
            raise KeyError_("RSA keys must have at least 2048 bits")
    elif alg == "EdDSA":
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyError_("EdDSA needs an Ed25519 key")
    else:
        raise KeyError_(f"unsupported signing algorithm {alg!r}")


def load_private_key(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Load a PEM (PKCS#8, SEC1 or PKCS#1, optionally encrypted) or DER private key."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=passphrase)
        else:
            key = serialization.load_der_private_key(data, password=passphrase)
    except TypeError as exc:  # encrypted without passphrase, or passphrase for a plain key
        raise KeyError_(f"passphrase problem: {exc}") from exc
    except ValueError as exc:
        raise KeyError_(f"not a readable private key (wrong passphrase?): {exc}") from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm and friends
        raise KeyError_(f"not a readable private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyError_("only EC, RSA and Ed25519 private keys are supported")
    return key


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Load one or more X.509 certificates (PEM bundle, or one DER certificate), leaf first."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise KeyError_(f"not a readable X.509 certificate: {exc}") from exc


def load_pkcs12(data: bytes, passphrase: bytes | None = None) -> tuple[PrivateKey, list[x509.Certificate]]:
    """Load a private key and its certificate chain from a PKCS#12 (.p12 / .pfx) file."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
    except ValueError as exc:
        raise KeyError_(f"not a readable PKCS#12 file (wrong passphrase?): {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyError_("the PKCS#12 file holds no supported private key")
    chain = ([cert] if cert else []) + list(extra or [])
    return key, chain


def certificate_thumbprint(cert: x509.Certificate) -> str:
    """``x5t#S256``: base64url SHA-256 of the DER certificate (RFC 7517 §4.9)."""
    return b64url(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _to_jwk(key: PrivateKey) -> AsymmetricKey:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAKey.import_key(private_key_pem(key))
    return OKPKey.import_key(private_key_pem(key))


def import_jwk(data: dict[str, object]) -> AsymmetricKey | OctKey:
    """A JWK dict as a joserfc key; raises KeyError_ for anything malformed."""
    try:
        kty = data.get("kty")
        value: Any = data
        if kty == "EC":
            return ECKey.import_key(value)
        if kty == "RSA":
            return RSAKey.import_key(value)
        if kty == "OKP":
            return OKPKey.import_key(value)
        if kty == "oct":
            return OctKey.import_key(value)
        raise KeyError_(f"unsupported kty {kty!r}")
    except KeyError_:
        raise
    except Exception as exc:
        raise KeyError_(f"malformed JWK: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private signing key with its algorithm, status and optional X.509 chain."""

    alg: str
    jwk: AsymmetricKey
    certificates: tuple[x509.Certificate, ...] = ()
    status: KeyStatus = "active"
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    publish_until: dt.datetime | None = None
    kid: str = ""  # computed: the RFC 7638 thumbprint (cached: it costs more than an ES256 signature)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", self.jwk.thumbprint())

    def public_jwk(self) -> dict[str, object]:
        """The public JWK as published in the JWKS (kid, alg, use, and x5c / x5t#S256 if any)."""
        out: dict[str, object] = dict(self.jwk.as_dict(private=False))
        out.pop("key_ops", None)
        out.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        if self.certificates:
            out["x5c"] = [
                base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
                for c in self.certificates
            ]
            out["x5t#S256"] = certificate_thumbprint(self.certificates[0])
        return out

    def private_pem(self) -> bytes:
        raw = self.jwk.private_key
        assert isinstance(raw, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
        return private_key_pem(raw)

    def certificates_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates)

    @classmethod
    def generate(cls, alg: str, status: KeyStatus = "active") -> SigningKey:
        return cls(alg=alg, jwk=_to_jwk(generate_private_key(alg)), status=status)


def signing_key_from_pem(
    key_pem: bytes,
    cert_pem: bytes | None = None,
    *,
    passphrase: bytes | None = None,
    alg: str | None = None,
    status: KeyStatus = "active",
) -> SigningKey:
    """A SigningKey from a private key file and, optionally, its certificate chain.

    Raises KeyError_ if the key is unreadable, the algorithm does not fit the key, or the
    certificate's public key is not the private key's.
    """
    private = load_private_key(key_pem, passphrase)
    certs = load_certificates(cert_pem) if cert_pem else []
    return _signing_key(private, certs, alg=alg, status=status)


def _signing_key(
    private: PrivateKey, certs: Sequence[x509.Certificate], *, alg: str | None, status: KeyStatus
) -> SigningKey:
    alg = alg or alg_for_key(private)
    _check_alg_fits(alg, private)
    if certs:
        leaf = certs[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        mine = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if leaf != mine:
            raise KeyError_("the certificate does not belong to the private key")
    return SigningKey(alg=alg, jwk=_to_jwk(private), certificates=tuple(certs), status=status)


def signing_key_from_pkcs12(
    data: bytes, *, passphrase: bytes | None = None, alg: str | None = None, status: KeyStatus = "active"
) -> SigningKey:
    private, certs = load_pkcs12(data, passphrase)
    return _signing_key(private, certs, alg=alg, status=status)


def self_signed_certificate(
    key: PrivateKey, common_name: str, *, days: int = 365, dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> x509.Certificate:
    """A self-signed certificate for ``key`` (development TLS, or to publish a key with x5c)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    import ipaddress

    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, digest)


def jwks_document(keys: Iterable[SigningKey]) -> dict[str, list[dict[str, object]]]:
    """The public JWKS (RFC 7517 §5) of the given keys."""
    return {"keys": [k.public_jwk() for k in keys]}


def key_set(keys: Iterable[SigningKey]) -> KeySet:
    """A joserfc KeySet of the public halves, for verifying what these keys signed."""
    return KeySet([import_jwk(k.public_jwk()) for k in keys])
