"""Tokens as the client holds them, and the token endpoint request every flow ends with."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .auth_methods import ClientAuth

__all__ = ["Token", "TokenError", "atoken_request", "token_request"]

log = logging.getLogger("ostiary.client")


class TokenError(Exception):
    """The token endpoint refused (``error`` is its RFC 6749 §5.2 code) or could not be reached."""

    def __init__(self, error: str, description: str = "", status: int | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class Token:
    """An access token with what is known of its lifetime; credentials are left out of ``repr``."""

    access_token: str = field(repr=False)
    issued_at: float
    expires_at: float | None = None
    token_type: str = "Bearer"
    scope: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)

    def refresh_due(self, now: float, ratio: float) -> bool:
        """True once ``ratio`` of the lifetime has passed (a token without expires_in never is)."""
        if self.expires_at is None:
            return False
        return now >= self.issued_at + ratio * (self.expires_at - self.issued_at)

    def expired(self, now: float, skew: float = 5.0) -> bool:
        return self.expires_at is not None and now >= self.expires_at - skew

    @classmethod
    def from_response(cls, doc: dict[str, Any], now: float) -> Token:
        """Raises TokenError if the answer is not an RFC 6749 §5.1 Bearer token response."""
        access = doc.get("access_token")
        kind = doc.get("token_type", "")
        if not isinstance(access, str) or not access:
            raise TokenError("invalid_response", "no access_token in the token response")
        if not isinstance(kind, str) or kind.lower() not in ("bearer", "dpop", "n_a"):
            raise TokenError("invalid_response", f"unsupported token_type {kind!r}")
        expires_in = doc.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else None
        return cls(
            access_token=access,
            issued_at=now,
            expires_at=now + lifetime if lifetime else None,
            token_type="Bearer" if kind.lower() == "bearer" else kind,
            scope=doc.get("scope") if isinstance(doc.get("scope"), str) else None,
            refresh_token=doc.get("refresh_token") if isinstance(doc.get("refresh_token"), str) else None,
            id_token=doc.get("id_token") if isinstance(doc.get("id_token"), str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Token:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _prepare(endpoint: str, form: dict[str, str], auth: ClientAuth) -> tuple[dict[str, str], dict[str, str]]:
    headers = {"Accept": "application/json"}
    body = dict(form)
    auth.apply(endpoint, headers, body)
    return headers, body


def _read(response: httpx.Response, now: float) -> Token:
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if response.status_code != 200 or not isinstance(doc, dict):
        error = doc.get("error") if isinstance(doc, dict) else None
        desc = doc.get("error_description") if isinstance(doc, dict) else None
        raise TokenError(
            str(error or "http_error"), str(desc or f"token endpoint answered HTTP {response.status_code}"),
            response.status_code,
        )
    return Token.from_response(doc, now)


def token_request(http: httpx.Client, endpoint: str, form: dict[str, str], auth: ClientAuth) -> Token:
    """POST ``form`` to the token endpoint; raises TokenError."""
    headers, body = _prepare(endpoint, form, auth)
    now = time.time()
    try:
        response = http.post(endpoint, data=body, headers=headers)
    except httpx.HTTPError as exc:
        raise TokenError("unreachable", f"{type(exc).__name__} calling the token endpoint") from exc
    log.debug("token endpoint %s answered %s", endpoint, response.status_code)
    return _read(response, now)


async def atoken_request(
    http: httpx.AsyncClient, endpoint: str, form: dict[str, str], auth: ClientAuth
) -> Token:
    """Async token_request."""
    headers, body = _prepare(endpoint, form, auth)
    now = time.time()
    try:
        response = await http.post(endpoint, data=body, headers=headers)
    except httpx.HTTPError as exc:
        raise TokenError("unreachable", f"{type(exc).__name__} calling the token endpoint") from exc
    log.debug("token endpoint %s answered %s", endpoint, response.status_code)
    return _read(response, now)
