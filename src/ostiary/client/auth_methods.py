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

from joserfc.jwk import OctKey

from .. import jwt
from ..keys import HMAC_ALGS, SigningKey, certificate_thumbprint, signing_key_from_pem
from .secret import Secret

__all__ = ["ClientAuth", "ClientSecretBasic", "ClientSecretJwt", "ClientSecretPost", "NoClientAuth", "PrivateKeyJwt"]

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
        claims = _assertion_claims(self.client_id, audience, self.lifetime)
        headers = {"x5t#S256": certificate_thumbprint(self.key.certificates[0])} if self.key.certificates else None
        return jwt.sign(claims, self.key, typ=None, headers=headers)

    def apply(self, endpoint: str, headers: dict[str, str], form: dict[str, str]) -> None:
        _apply_assertion(self.client_id, self.assertion(self.audience or endpoint), form)


@dataclass(frozen=True, slots=True)
class ClientSecretJwt:
    """``client_secret_jwt`` (OIDC Core §9, RFC 7523 §2.2): a short-lived JWT MACed with the client secret.

    The secret never travels; ``alg`` is HS256, HS384 or HS512 (the one the client registered).
    """

    client_id: str
    client_secret: Secret
    alg: str = "HS256"
    audience: str | None = None
    lifetime: int = 60

    def __post_init__(self) -> None:
        if self.alg not in HMAC_ALGS:
            raise ValueError(f"client_secret_jwt signs with {', '.join(HMAC_ALGS)}, not {self.alg!r}")

    def assertion(self, audience: str) -> str:
        key = OctKey.import_key(self.client_secret.reveal().encode())
        return jwt.sign(_assertion_claims(self.client_id, audience, self.lifetime), key, alg=self.alg, typ=None)

    def apply(self, endpoint: str, headers: dict[str, str], form: dict[str, str]) -> None:
        _apply_assertion(self.client_id, self.assertion(self.audience or endpoint), form)


def _assertion_claims(client_id: str, audience: str, lifetime: int) -> dict[str, str | int]:
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),  # RFC 7523 §3: lets the server reject replays
    }


def _apply_assertion(client_id: str, assertion: str, form: dict[str, str]) -> None:
    form["client_id"] = client_id
    form["client_assertion_type"] = JWT_BEARER_ASSERTION
    form["client_assertion"] = assertion
