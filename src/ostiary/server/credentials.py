"""Secrets the server hands out: generated, digested, compared in constant time, sealed when needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Sealer", "digest", "is_token", "matches", "new_secret", "new_token"]


def new_secret() -> str:
    """A 256-bit client secret, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def is_token(value: str, max_length: int = 64) -> bool:
    """Could `value` be one of our new_token values (base64url)? Checked before a lookup by it."""
    return 0 < len(value) <= max_length and value.isascii() and value.replace("-", "").replace("_", "").isalnum()


def digest(value: str) -> str:
    """SHA-256 hex digest: high-entropy secrets and tokens need no slow hash (DESIGN: client secrets)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def matches(value: str, expected_digest: str | None) -> bool:
    """Constant-time check of a presented secret against a stored digest."""
    if not expected_digest:
        return False
    return hmac.compare_digest(digest(value), expected_digest)


class Sealer:
    """AES-256-GCM sealing for the few secrets that must be recoverable (client_secret_jwt keys)."""

    def __init__(self, secret_key: str | None = None) -> None:
        self._aead: AESGCM | None = None
        self._mac_key = b""
        if secret_key:
            self.install(secret_key)

    def install(self, secret_key: str) -> None:
        self._aead = AESGCM(hashlib.sha256(b"ostiary-seal:" + secret_key.encode()).digest())
        self._mac_key = hashlib.sha256(b"ostiary-mac:" + secret_key.encode()).digest()

    def mac(self, purpose: str, value: str) -> str:
        """A keyed MAC binding `value` to `purpose` (CSRF tokens); compare with hmac.compare_digest."""
        if self._aead is None:
            raise RuntimeError("no sealing key installed")
        msg = purpose.encode() + b"\x00" + value.encode("utf-8", "surrogatepass")
        return base64.urlsafe_b64encode(hmac.new(self._mac_key, msg, hashlib.sha256).digest()).rstrip(b"=").decode()

    def seal(self, plaintext: str) -> str:
        if self._aead is None:
            raise RuntimeError("no sealing key installed")
        nonce = os.urandom(12)
        box = self._aead.encrypt(nonce, plaintext.encode(), b"ostiary")
        return base64.urlsafe_b64encode(nonce + box).decode()

    def unseal(self, sealed: str) -> str | None:
        """The plaintext, or None if the box was not sealed with this key."""
        if self._aead is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:12], raw[12:], b"ostiary").decode()
        except (InvalidTag, ValueError):
            return None
