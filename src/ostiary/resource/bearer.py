"""Finding the bearer token in a request and writing the challenge (RFC 6750 §2, §3).

Framework-free: adapters pass the raw ``Authorization`` header values and any ``access_token``
values from the query or form body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import GuardError, InsufficientScope, InvalidRequest, IssuerUnavailable, MissingToken

__all__ = ["challenge", "extract_token"]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6750 §3: error_description and realm values are %x20-21 / %x23-5B / %x5D-7E
_UNSAFE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


def extract_token(
    authorization: Sequence[str],
    query_tokens: Sequence[str] = (),
    form_tokens: Sequence[str] = (),
    *,
    allow_query: bool = False,
    allow_form: bool = False,
) -> str:
    """The one bearer token in the request; raises MissingToken or InvalidRequest."""
    header_token: str | None = None
    if len(authorization) > 1:
        raise InvalidRequest("more than one Authorization header")
    if authorization:
        scheme, _, value = authorization[0].strip().partition(" ")
        if scheme.lower() == "bearer":
            value = value.strip()
            if not _B64TOKEN.fullmatch(value):
                raise InvalidRequest("malformed Bearer authorization header")
            header_token = value
    found = (1 if header_token else 0) + len(query_tokens) + len(form_tokens)
    if found > 1:  # RFC 6750 §3.1: more than one method (or the same one twice) is invalid_request
        raise InvalidRequest("the token must be sent in exactly one place")
    if header_token:
        return header_token
    if query_tokens:
        if not allow_query:  # OAuth 2.1 §5.2 / RFC 9700 §2.4: no tokens in URIs
            raise InvalidRequest("access tokens are not accepted in the query string")
        return query_tokens[0]
    if form_tokens:
        if not allow_form:
            raise InvalidRequest("access tokens are not accepted in the request body")
        return form_tokens[0]
    raise MissingToken()


def _quoted(value: str) -> str:
    return '"' + _UNSAFE.sub("?", value) + '"'


def challenge(realm: str, exc: GuardError | None = None) -> str:
    """The ``WWW-Authenticate`` value for ``exc`` (no error code for a missing token)."""
    params = [f"realm={_quoted(realm)}"]
    if exc is not None and exc.error and not isinstance(exc, MissingToken | IssuerUnavailable):
        params.append(f"error={_quoted(exc.error)}")
        if exc.description:
            params.append(f"error_description={_quoted(exc.description)}")
        if isinstance(exc, InsufficientScope) and exc.scope:
            params.append(f"scope={_quoted(' '.join(exc.scope))}")
    return "Bearer " + ", ".join(params)
