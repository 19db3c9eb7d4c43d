"""TOTP (RFC 6238) over HOTP (RFC 4226): HMAC-SHA-1, 6 digits, 30-second steps, what every
authenticator app supports; secrets, codes, the ±1 step window and the `otpauth://` URI.

The Key URI format is the one authenticator apps read from a QR code
(github.com/google/google-authenticator/wiki/Key-Uri-Format).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

__all__ = ["DIGITS", "PERIOD", "WINDOW", "code_at", "grouped", "matching_step", "new_secret", "otpauth_uri",
           "step_at"]

DIGITS = 6
PERIOD = 30  # seconds per time step (RFC 6238 §5.2 recommends 30)
WINDOW = 1  # steps accepted either side of now: clock drift and the time to type (RFC 6238 §5.2)
SECRET_BYTES = 20  # 160 bits, the length RFC 4226 §4 recommends (R6) for HMAC-SHA-1


def new_secret() -> str:
    """A random secret in base32 without padding (RFC 4648 §6), as apps expect it."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def step_at(now: float) -> int:
    """The RFC 6238 §4.2 time step T = floor((now - T0) / X), T0 = 0."""
    return int(now // PERIOD)


def code_at(secret: str, step: int) -> str:
    """HOTP(K, T) (RFC 4226 §5.3): HMAC-SHA-1, dynamic truncation, `DIGITS` decimal digits."""
    mac = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step within ±`WINDOW` of `now` whose code is `code`, or None.

    Every candidate is computed and compared in constant time (no early exit), so the answer's
    timing does not tell which step, or how many digits, matched.
    """
    typed = "".join(code.split())  # apps show "123 456"
    if len(typed) != DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    current = step_at(now)
    found: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(code_at(secret, step).encode(), typed.encode()) and found is None:
            found = step
    return found


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def otpauth_uri(secret: str, issuer: str, account: str) -> str:
    """otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=... (the label and the parameter both name the issuer)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS,
                       "period": PERIOD}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"
