"""The hot path: check a compact JWS against one cached public key with ``cryptography`` directly.

joserfc is used to parse JWKs (once per key, when the JWKS is fetched); per token we only split,
base64url-decode, look the key up by ``kid`` and call the public key's ``verify``. The RFC 8725
rules stay: the algorithm comes from an allow-list and must fit the key's type and curve
(§3.1, §3.2), ``none`` and HMAC are never accepted (so an RSA public key can never be used as an
HMAC secret), and a ``crit`` header we do not understand rejects the token (RFC 7515 §4.1.11).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..keys import ASYMMETRIC_ALGS, KeyError_, import_jwk
from .errors import InvalidToken

__all__ = ["SUPPORTED_ALGS", "PublicKey", "SplitToken", "b64url_decode", "decode_payload", "parse_jwk", "split_token"]

SUPPORTED_ALGS: frozenset[str] = frozenset(ASYMMETRIC_ALGS)

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVE_FOR_ALG = {"ES256": ("secp256r1", 32), "ES384": ("secp384r1", 48), "ES512": ("secp521r1", 66)}
_PAD = ("", "", "==", "=")
_B64URL = re.compile(r"[A-Za-z0-9_-]*").fullmatch  # RFC 7515 §2: base64url, no padding
# Built once: cryptography's padding and hash objects are immutable and reusable
_ECDSA = {alg: ec.ECDSA(_HASHES[alg[2:]]()) for alg in _CURVE_FOR_ALG}
_RSA = {
    f"{kind}{bits}": (
        padding.PKCS1v15() if kind == "RS" else padding.PSS(mgf=padding.MGF1(h()), salt_length=h().digest_size),
        h(),
    )
    for kind in ("RS", "PS")
    for bits, h in _HASHES.items()
}


def b64url_decode(part: str) -> bytes:
    """Base64url without padding (RFC 7515 §2); anything outside the alphabet raises InvalidToken."""
    if _B64URL(part) is None or len(part) % 4 == 1:
        raise InvalidToken("malformed token")
    try:
        return binascii.a2b_base64(part.replace("-", "+").replace("_", "/") + _PAD[len(part) % 4])
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One verification key from a JWKS, parsed once: its kid, the algorithms it may verify, the key."""

    kid: str | None
    algs: frozenset[str]
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """True if ``signature`` is valid for ``alg``; the caller has checked ``alg in self.algs``."""
        key = self.key
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                size = _CURVE_FOR_ALG[alg][1]
                if len(signature) != 2 * size:  # RFC 7518 §3.4: R || S, fixed width
                    return False
                r = int.from_bytes(signature[:size], "big")
                s = int.from_bytes(signature[size:], "big")
                key.verify(encode_dss_signature(r, s), signing_input, _ECDSA[alg])
            elif isinstance(key, rsa.RSAPublicKey):
                pad, digest = _RSA[alg]
                key.verify(signature, signing_input, pad, digest)
            else:
                key.verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True


def _algs_for(key: object, declared: object) -> frozenset[str]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        algs = {a for a, (curve, _) in _CURVE_FOR_ALG.items() if curve == key.curve.name}
    elif isinstance(key, rsa.RSAPublicKey):
        algs = {a for a in SUPPORTED_ALGS if a[:2] in ("RS", "PS")} if key.key_size >= 2048 else set()
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algs = {"EdDSA"}
    else:
        algs = set()
    if isinstance(declared, str):  # RFC 7517 §4.4: a key that names its alg is used with that alg only
        algs &= {declared}
    return frozenset(algs)


def parse_jwk(data: Mapping[str, Any]) -> PublicKey | None:
    """A verification key from a JWK, or None if it is not a usable public signing key."""
    if data.get("use", "sig") != "sig" or data.get("kty") not in ("EC", "RSA", "OKP"):
        return None
    ops = data.get("key_ops")
    if isinstance(ops, list) and "verify" not in ops:
        return None
    public = {k: v for k, v in data.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
    try:
        raw = import_jwk(public).public_key
    except KeyError_:
        return None
    if not isinstance(raw, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return None
    algs = _algs_for(raw, data.get("alg"))
    if not algs:
        return None
    kid = data.get("kid")
    return PublicKey(kid=kid if isinstance(kid, str) else None, algs=algs, key=raw)


class SplitToken(NamedTuple):  # a tuple: built on every request, so built cheaply
    header_b64: str
    signing_input: bytes
    payload_b64: str
    signature_b64: str

    def header(self) -> dict[str, Any]:
        """The decoded protected header; raises InvalidToken."""
        try:
            header = orjson.loads(b64url_decode(self.header_b64))
        except orjson.JSONDecodeError as exc:
            raise InvalidToken("malformed token header") from exc
        if not isinstance(header, dict):
            raise InvalidToken("malformed token header")
        return header

    def signature(self) -> bytes:
        return b64url_decode(self.signature_b64)


def split_token(token: str) -> SplitToken:
    """The three parts of a compact JWS, still encoded; raises InvalidToken."""
    if not token.isascii():
        raise InvalidToken("malformed token")
    first = token.find(".")
    second = token.find(".", first + 1)
    if first <= 0 or second < 0 or token.find(".", second + 1) >= 0:
        raise InvalidToken("malformed token")
    return SplitToken(
        header_b64=token[:first],
        signing_input=token[:second].encode("ascii"),
        payload_b64=token[first + 1 : second],
        signature_b64=token[second + 1 :],
    )


def decode_payload(payload_b64: str) -> dict[str, Any]:
    try:
        claims = orjson.loads(b64url_decode(payload_b64))
    except orjson.JSONDecodeError as exc:
        raise InvalidToken("token claims are not JSON") from exc
    if not isinstance(claims, dict):
        raise InvalidToken("token claims are not a JSON object")
    return claims
