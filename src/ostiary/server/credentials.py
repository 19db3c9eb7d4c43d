"""Secrets the server hands out: generated, digested, compared in constant time, sealed when needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Sealer", "digest", "is_token", "key_id", "matches", "new_secret", "new_token"]


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




SEALED_PREFIX = "s1."


def key_id(secret_key: str) -> str:
    """A short public name for a secret key, written into what it seals (rewrap finds the key by it)."""
    return hashlib.sha256(b"ostiary-key-id:" + secret_key.encode()).hexdigest()[:12]


def _box(secret_key: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"ostiary-seal:" + secret_key.encode()).digest())


class Sealer:
    """AES-256-GCM sealing under OSTIARY_SECRET_KEY for what must be recoverable (private signing keys,
    client_secret_jwt keys, registration access tokens): ``s1.<key id>.<base64url(nonce | box)>``.

    One current key seals; earlier keys (``remember``) still open what they sealed until
    ``ostiary keys rewrap`` has re-sealed it under the current one. Values sealed before the key id
    was written (plain base64url) are opened with any known key.
    """

    def __init__(self, secret_key: str | None = None, previous: Sequence[str] = ()) -> None:
        self._boxes: dict[str, AESGCM] = {}
        self._current: str | None = None
        self._mac_key = b""
        if secret_key:
            self.install(secret_key, previous)

    def install(self, secret_key: str, previous: Sequence[str] = ()) -> None:
        """Make ``secret_key`` the sealing key; ``previous`` keys only open."""
        self._boxes = {}
        for old in previous:
            self.remember(old)
        self._current = key_id(secret_key)
        self._boxes[self._current] = _box(secret_key)
        self._mac_key = hashlib.sha256(b"ostiary-mac:" + secret_key.encode()).digest()

    def remember(self, old_key: str) -> None:
        """Also open values sealed under ``old_key`` (during a rotation)."""
        self._boxes.setdefault(key_id(old_key), _box(old_key))

    @property
    def installed(self) -> bool:
        return self._current is not None

    def mac(self, purpose: str, value: str) -> str:
        """A keyed MAC binding `value` to `purpose` (CSRF tokens); compare with hmac.compare_digest."""
        if self._current is None:
            raise RuntimeError("no sealing key installed")
        msg = purpose.encode() + b"\x00" + value.encode("utf-8", "surrogatepass")
        return base64.urlsafe_b64encode(hmac.new(self._mac_key, msg, hashlib.sha256).digest()).rstrip(b"=").decode()

    def seal(self, plaintext: str) -> str:
        if self._current is None:
            raise RuntimeError("no sealing key installed")
        nonce = os.urandom(12)
        box = self._boxes[self._current].encrypt(nonce, plaintext.encode(), b"ostiary")
        return f"{SEALED_PREFIX}{self._current}.{base64.urlsafe_b64encode(nonce + box).decode()}"

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` was sealed under the current key (rewrap leaves it alone)."""
        return self._current is not None and sealed.startswith(f"{SEALED_PREFIX}{self._current}.")

    def unseal(self, sealed: str) -> str | None:
        """The plaintext, or None if no known key sealed the box."""
        if sealed.startswith(SEALED_PREFIX):
            kid, _, body = sealed[len(SEALED_PREFIX):].partition(".")
            box = self._boxes.get(kid)
            return _open(box, body) if box is not None else None
        for box in self._boxes.values():  # before key ids were written
            opened = _open(box, sealed)
            if opened is not None:
                return opened
        return None


def _open(box: AESGCM, body: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        return box.decrypt(raw[:12], raw[12:], b"ostiary").decode()
    except (InvalidTag, ValueError):
        return None
