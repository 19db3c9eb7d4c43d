"""One-time recovery codes: ten codes of 80 random bits, shown once, kept as SHA-256 digests.

NIST SP 800-63B §5.1.2 calls them look-up secrets, a "something you have" authenticator. With 80
bits each, a digest needs no salt or slow hash to resist guessing from a stolen database (the same
reasoning as for the tokens this server keeps by digest).
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["COUNT", "digest", "new_codes", "normalise"]

COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 symbols without 0/o, 1/l/i: easy to read back
_LENGTH = 16  # 16 symbols of log2(31) bits: 79.3 bits, shown as xxxx-xxxx-xxxx-xxxx
MAX_INPUT = 64  # longer input is refused before hashing


def new_codes(count: int = COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        codes.append("-".join(raw[i:i + 4] for i in range(0, _LENGTH, 4)))
    return codes


def normalise(code: str) -> str | None:
    """The code as stored (lower case, no spaces or hyphens), or None if it cannot be one."""
    if len(code) > MAX_INPUT:
        return None
    cleaned = "".join(c for c in code.lower() if c not in " -\t")
    if len(cleaned) != _LENGTH or any(c not in _ALPHABET for c in cleaned):
        return None
    return cleaned


def digest(normalised: str) -> str:
    return hashlib.sha256(normalised.encode()).hexdigest()
