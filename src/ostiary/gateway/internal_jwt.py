"""The optional internal JWT for upstreams (issue item 4): the gateway's own short-lived statement of the caller.

It has its own issuer and key and the ``typ`` ``ostiary-gateway+jwt``, its ``aud`` is the route's upstream and
it lives at most 60 s, so no other resource server accepts it: an RFC 9068 verifier refuses its ``typ``, any
verifier of the authorization server refuses its issuer and key, and another upstream refuses its ``aud``.
The public key is published at ``/_ostiary/jwks.json``; it travels in ``X-Ostiary-Jwt``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import orjson

from ..jwt import CompactSigner
from ..keys import KeyError_, jwks_document, signing_key_from_pem
from ..resource.principal import Principal
from .config import GatewayConfigError, InternalJwt

__all__ = ["INTERNAL_JWT_HEADER", "INTERNAL_TYP", "InternalTokens"]

INTERNAL_TYP = "ostiary-gateway+jwt"
INTERNAL_JWT_HEADER = "x-ostiary-jwt"


class InternalTokens:
    """Signs internal JWTs; raises GatewayConfigError at construction if the key cannot be used."""

    def __init__(self, settings: InternalJwt, source: str = "<config>", clock: Callable[[], float] = time.time) -> None:
        try:
            with open(settings.key_file, "rb") as f:
                key = signing_key_from_pem(f.read())
        except OSError as exc:
            raise GatewayConfigError(f"{source}: internal_jwt.key_file: cannot be read ({exc.strerror})") from None
        except KeyError_ as exc:
            raise GatewayConfigError(f"{source}: internal_jwt.key_file: {exc}") from None
        self.settings = settings
        self._signer = CompactSigner(key, typ=INTERNAL_TYP)
        self._clock = clock
        self.jwks = orjson.dumps(jwks_document([key]))

    def mint(self, principal: Principal, audience: str) -> str:
        now = int(self._clock())
        claims: dict[str, object] = {
            "iss": self.settings.issuer, "aud": audience, "iat": now, "exp": now + self.settings.lifetime,
            "jti": secrets.token_urlsafe(12), "scope": " ".join(sorted(principal.scopes)),
        }
        if principal.subject is not None:
            claims["sub"] = principal.subject
        if principal.client_id is not None:
            claims["client_id"] = principal.client_id
        return self._signer.sign(claims)
