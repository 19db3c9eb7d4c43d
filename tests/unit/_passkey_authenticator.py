"""A software WebAuthn authenticator for tests: makes registration and assertion responses as a
browser would send them (JSON, base64url), with the flags, counter, origin and RP ID a test chooses."""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    rp_id: str
    origin: str
    backup_eligible: bool = False
    user_verifying: bool = True
    counter: int = 0  # 0: keeps no counter (as synced passkeys); else grows by one per assertion
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    user_handle: bytes = b""

    def _flags(self, extra: int = 0) -> int:
        flags = UP | extra
        if self.user_verifying:
            flags |= UV
        if self.backup_eligible:
            flags |= BE | BS
        return flags

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return orjson.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                             "crossOrigin": False})

    def create(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None) -> str:
        """The JSON of `navigator.credentials.create()` for `options` (PublicKeyCredentialCreationOptionsJSON)."""
        self.user_handle = unb64(options["user"]["id"])
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose()
        auth_data = rp_hash + bytes([self._flags(AT)]) + struct.pack(">I", self.counter) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return orjson.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64(self._client_data("webauthn.create", options["challenge"], origin)),
                         "attestationObject": b64(attestation), "transports": ["internal"]},
            "clientExtensionResults": {},
        }).decode()

    def get(self, options: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None,
            count: int | None = None) -> str:
        """The JSON of `navigator.credentials.get()` for `options`."""
        if self.counter:
            self.counter += 1
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        auth_data = rp_hash + bytes([self._flags()]) + struct.pack(">I", self.counter if count is None else count)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return orjson.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                         "signature": b64(signature), "userHandle": b64(self.user_handle)},
            "clientExtensionResults": {},
        }).decode()
