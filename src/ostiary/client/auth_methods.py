"""Client authentication at the token endpoint: one small class per method (RFC 6749 §2.3, RFC 7523).

Each method adds what it needs to the request's headers and form; the secrets they hold are
``Secret`` values or private keys, and never appear in their reprs.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from .. import jwt
from ..keys import SigningKey, certificate_thumbprint, signing_key_from_pem
from .secret import Secret

__all__ = ["ClientAuth", "ClientSecretBasic", "ClientSecretPost", "NoClientAuth", "PrivateKeyJwt"]

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientAuth(Protocol):
    """Adds client authentication to a request for ``endpoint``."""

    @property
    def client_id(self) -> str: ...

    def apply(self, endpoint: str, headers: dict[str, str], form: dict[str, str]) -> None: ...


@dataclass(frozen=True, slots=True)
class ClientSecretBasic:
    """``client_secret_basic``: HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1)."""

    client_id: str
    client_secret: Secret

    def apply(self, endpoint: str, headers: dict[str, str], form: dict[str, str]) -> None:
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret.reveal(), safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")


@dataclass(frozen=True, slots=True)
class ClientSecretPost:
    """``client_secret_post``: id and secret in the form body (RFC 6749 §2.3.1)."""

    client_id: str
    client_secret: Secret

    def apply(self, endpoint: str, headers: dict[str, str], form: dict[str, str]) -> None:
        form["client_id"] = self.client_id
        form["client_secret"] = self.client_secret.reveal()


@dataclass(frozen=True, slots=True)
class NoClientAuth:
    """A public client (``none``): only its id goes in the form."""

    client_id: str

    def apply(self, endpoint: str, headers: dict[str, str], form: dict[str, str]) -> None:
        form["client_id"] = self.client_id


@dataclass(frozen=True, slots=True)
class PrivateKeyJwt:
    """``private_key_jwt`` (RFC 7523 §2.2, §3): a short-lived JWT signed with the client's key.

    With an X.509 certificate, its SHA-256 thumbprint goes in the ``x5t#S256`` header so the server
    can find the registered certificate. ``audience`` defaults to the endpoint URL.
    """

    client_id: str
    key: SigningKey = field(repr=False)
    audience: str | None = None
    lifetime: int = 60

    @classmethod
    def from_pem(
        cls,
        client_id: str,
        key_pem: bytes,
        cert_pem: bytes | None = None,
        *,
        passphrase: bytes | None = None,
        alg: str | None = None,
        audience: str | None = None,
    ) -> PrivateKeyJwt:
        """Raises ostiary.keys.KeyError_ if the key is unreadable or the certificate is not its own."""
        key = signing_key_from_pem(key_pem, cert_pem, passphrase=passphrase, alg=alg)
        return cls(client_id=client_id, key=key, audience=audience)

    def assertion(self, audience: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(16),  # RFC 7523 §3: lets the server reject replays
        }
        headers = {"x5t#S256": certificate_thumbprint(self.key.certificates[0])} if self.key.certificates else None
        return jwt.sign(claims, self.key, typ=None, headers=headers)

    def apply(self, endpoint: str, headers: dict[str, str], form: dict[str, str]) -> None:
        form["client_id"] = self.client_id
        form["client_assertion_type"] = JWT_BEARER_ASSERTION
        form["client_assertion"] = self.assertion(self.audience or endpoint)
