"""Guard: a TokenVerifier plus the request rules every adapter shares.

An adapter hands the guard the token sources of a request; the guard returns a Principal with its
permissions, or raises a GuardError that ``error_response`` turns into the RFC 6750 answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from .bearer import challenge, extract_token
from .errors import GuardError, InsufficientScope, InvalidToken, IssuerUnavailable, MissingToken
from .permissions import PermissionPolicy, scope_permissions
from .principal import Principal
from .verifier import TokenVerifier

__all__ = ["ErrorResponse", "Guard"]


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Guard:
    """Verifies the request's bearer token and computes the caller's permissions.

    ``unavailable_status`` is what a request gets when the issuer cannot be reached: 503 (the
    default: the client may retry) or 401 (treat as an invalid token).
    """

    verifier: TokenVerifier
    realm: str = "api"
    policy: PermissionPolicy = scope_permissions
    allow_query: bool = False
    allow_form: bool = False
    unavailable_status: int = 503

    def _with_permissions(self, principal: Principal) -> Principal:
        return dataclasses.replace(principal, permissions=frozenset(self.policy(principal)))

    def authenticate(
        self, authorization: Sequence[str], query_tokens: Sequence[str] = (), form_tokens: Sequence[str] = ()
    ) -> Principal:
        """Raises MissingToken, InvalidRequest, InvalidToken or IssuerUnavailable."""
        token = extract_token(
            authorization, query_tokens, form_tokens, allow_query=self.allow_query, allow_form=self.allow_form
        )
        return self._with_permissions(self.verifier.verify(token))

    async def aauthenticate(
        self, authorization: Sequence[str], query_tokens: Sequence[str] = (), form_tokens: Sequence[str] = ()
    ) -> Principal:
        token = extract_token(
            authorization, query_tokens, form_tokens, allow_query=self.allow_query, allow_form=self.allow_form
        )
        return self._with_permissions(await self.verifier.averify(token))

    @staticmethod
    def require(principal: Principal, scopes: Sequence[str] = (), permissions: Sequence[str] = ()) -> None:
        """Raises InsufficientScope unless ``principal`` has every scope and permission listed."""
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise InsufficientScope(f"needs scope {' '.join(scopes)}", scope=tuple(scopes))
        lacking = [p for p in permissions if p not in principal.permissions]
        if lacking:
            raise InsufficientScope(f"needs permission {' '.join(lacking)}")

    def error_response(self, exc: GuardError) -> ErrorResponse:
        """The RFC 6750 response for ``exc``."""
        if isinstance(exc, IssuerUnavailable) and self.unavailable_status != 503:
            exc = InvalidToken("the token cannot be verified right now")
        headers: list[tuple[str, str]] = [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("www-authenticate", challenge(self.realm, exc)),
        ]
        if isinstance(exc, IssuerUnavailable):
            headers.append(("retry-after", "5"))
        body: dict[str, str] = {}
        if not isinstance(exc, MissingToken):  # RFC 6750 §3.1: no error code when no token was sent
            body["error"] = exc.error
            if exc.description:
                body["error_description"] = exc.description
        return ErrorResponse(status=exc.status_code, headers=tuple(headers), body=orjson.dumps(body))
