"""PKCE (RFC 7636): a code_verifier and its S256 code_challenge. Only S256 is offered (RFC 9700 §2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CHALLENGE_METHODS", "Pkce", "s256"]


def s256(code_verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


CHALLENGE_METHODS: dict[str, Callable[[str], str]] = {"S256": s256}


@dataclass(frozen=True, slots=True)
class Pkce:
    code_verifier: str = field(repr=False)
    code_challenge: str
    code_challenge_method: str = "S256"

    @classmethod
    def generate(cls, method: str = "S256") -> Pkce:
        verifier = secrets.token_urlsafe(48)  # 64 characters of the unreserved set (RFC 7636 §4.1)
        challenge = CHALLENGE_METHODS[method](verifier)
        return cls(code_verifier=verifier, code_challenge=challenge, code_challenge_method=method)
