"""The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1): validation and responses.

Errors come in two kinds (RFC 6749 §4.1.2.1): while the client or redirect URI is unknown or
invalid, the user sees an error page and is never redirected (`PageError`); after that, errors go
back to the client's redirect URI (`RedirectError`), with `state` and `iss` (RFC 9207).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from .. import jwt
from ..errors import (
    InvalidRequest,
    OAuthError,
    PageError,
    RedirectError,
    RedirectTarget,
    RegistrationNotSupported,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from ..store import Client
from .claims import OIDC_SCOPES, parse_claims_request
from .client_auth import ClientLookup
from .keyring import KeyRing
from .policy.grants import check_grant
from .redirect_uris import match_redirect_uri, registered_default
from .scopes import grant_scopes, parse_scope

__all__ = ["AuthorizationRequest", "validate_request"]

PROMPTS = frozenset({"none", "login", "consent", "select_account"})
RESPONSE_MODES = frozenset({"query", "form_post"})
_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_SINGLE = ("client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
           "code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "id_token_hint",
           "claims", "acr_values", "ui_locales", "display", "launch", "aud")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    redirect_uri_given: bool
    response_mode: str
    scope: tuple[str, ...]
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None
    id_token_hint_sub: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    acr_values: str | None = None
    # Parameters for extensions (SMART `launch`, `aud`), kept as given.
    extra: Mapping[str, str] = field(default_factory=dict)
    # SMART launch context bound to this request (EHR launch, or the patient picked at login).
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> RedirectTarget:
        return RedirectTarget(self.redirect_uri, self.response_mode, self.state)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scope"] = list(self.scope)
        data["prompt"] = list(self.prompt)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthorizationRequest:
        values = dict(data)
        values["scope"] = tuple(values["scope"])
        values["prompt"] = tuple(values["prompt"])
        return cls(**values)


# Scopes any authorization-code client may ask for: OIDC identity and SMART launch context.
USER_SCOPES = (OIDC_SCOPES - {"offline_access"}) | {"fhirUser", "launch", "launch/patient", "launch/encounter"}


def _allowed_scopes(client: Client) -> frozenset[str]:
    refresh = {"offline_access", "online_access"} if "refresh_token" in client.grant_types else set()
    return client.scopes | USER_SCOPES | refresh


async def validate_request(
    params: Mapping[str, str], repeated: Iterable[str], clients: ClientLookup, keyring: KeyRing, issuer: str,
    *, pkce_required: bool,
) -> AuthorizationRequest:
    """A validated request; raises PageError or RedirectError."""
    repeated = set(repeated)
    if "client_id" in repeated or "redirect_uri" in repeated:
        raise PageError("invalid_request", "client_id or redirect_uri is repeated")
    client_id = params.get("client_id")
    if not client_id:
        raise PageError("invalid_request", "the request has no client_id")
    client = await clients.get(client_id)
    if client is None:
        raise PageError("invalid_client", "this application is not registered")
    given = params.get("redirect_uri")
    if given is None:
        # OIDC Core §3.1.2.1 requires it; plain OAuth may omit it with exactly one registered.
        found = None if "openid" in (params.get("scope") or "").split() else (
            registered_default(client.redirect_uris, client_id=client.client_id))
        if found is None:
            raise PageError("invalid_request", "the request has no redirect_uri")
    else:
        found = match_redirect_uri(given, client.redirect_uris, client_id=client.client_id)
        if found is None:
            raise PageError("invalid_request", "the redirect_uri is not registered for this application")
    redirect_uri = found
    mode = params.get("response_mode") or "query"
    target = RedirectTarget(redirect_uri, mode if mode in RESPONSE_MODES else "query", params.get("state"))
    await keyring.refresh()
    try:
        return _validate_rest(params, repeated, client, redirect_uri, given is not None, keyring, issuer,
                              pkce_required)
    except OAuthError as exc:
        raise RedirectError(exc, target) from None


# What an interaction stores for an anonymous caller is bounded: each kept parameter has a length cap, so one
# request cannot park up to the body limit in the interaction store for its lifetime.
STORED_PARAM_LIMITS: Mapping[str, int] = {
    "state": 4096, "nonce": 1024, "login_hint": 1024, "acr_values": 1024, "launch": 1024, "aud": 2048,
    "claims": 8192, "id_token_hint": 8192,
}


def _validate_rest(params: Mapping[str, str], repeated: set[str], client: Client, redirect_uri: str,
                   given: bool, keyring: KeyRing, issuer: str, pkce_required: bool) -> AuthorizationRequest:
    if repeated:
        raise InvalidRequest(f"parameter {sorted(repeated)[0]!r} is repeated")
    for name, limit in STORED_PARAM_LIMITS.items():
        if len(params.get(name) or "") > limit:
            raise InvalidRequest(f"{name} is longer than {limit} characters")
    for name, error in (("request", RequestNotSupported), ("request_uri", RequestUriNotSupported),
                        ("registration", RegistrationNotSupported)):
        if name in params:
            raise error(f"the {name} parameter is not supported")
    response_type = params.get("response_type")
    if not response_type:
        raise InvalidRequest("response_type is missing")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    if "code" not in client.response_types or "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization code flow")
    mode = params.get("response_mode") or "query"
    if mode not in RESPONSE_MODES:
        raise InvalidRequest("response_mode must be query or form_post")
    scope = grant_scopes(parse_scope(params.get("scope")), _allowed_scopes(client))
    scope = check_grant(client, "authorization_code", scope, explicit=True)  # never system/ (docs/security.md)
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method without code_challenge")
        if client.is_public or pkce_required:
            raise InvalidRequest("code_challenge is required (PKCE, RFC 7636 with S256)")
    else:
        if method != "S256":  # OAuth 2.1 §4.1.1: plain is refused, and absent means plain
            raise InvalidRequest("code_challenge_method must be S256")
        if not _PKCE_CHALLENGE.fullmatch(challenge):
            raise InvalidRequest("malformed code_challenge")
    prompt = tuple(params.get("prompt", "").split())
    if set(prompt) - PROMPTS:
        raise InvalidRequest("unknown prompt value")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    max_age = _max_age(params.get("max_age"))
    claims = parse_claims_request(params.get("claims"))
    hint_sub = _subject_asked(_id_token_hint_sub(params.get("id_token_hint"), keyring, issuer), claims)
    extra = {k: params[k] for k in ("launch", "aud") if k in params}
    return AuthorizationRequest(
        client_id=client.client_id, redirect_uri=redirect_uri, redirect_uri_given=given, response_mode=mode,
        scope=scope, state=params.get("state"), nonce=params.get("nonce"), code_challenge=challenge,
        code_challenge_method=method, prompt=prompt, max_age=max_age, login_hint=params.get("login_hint"),
        id_token_hint_sub=hint_sub, claims=claims, acr_values=params.get("acr_values"), extra=extra,
    )


def _max_age(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 10:
        raise InvalidRequest("max_age must be a non-negative integer")
    return int(value)


def _id_token_hint_sub(hint: str | None, keyring: KeyRing, issuer: str) -> str | None:
    if not hint:
        return None
    keys = keyring.cached_verification_keys()
    try:
        # An expired ID token is still a fine hint (OIDC Core §3.1.2.1): only who signed it matters.
        verified = jwt.verify(hint, keys, issuer=issuer, required=("sub",), leeway=10 * 365 * 86400)
    except jwt.JWTInvalid as exc:
        raise InvalidRequest(f"id_token_hint is not an ID token from this server: {exc.reason}") from None
    if verified.header.get("typ", "JWT").lower() not in ("jwt",):
        raise InvalidRequest("id_token_hint is not an ID token")
    return str(verified.claims["sub"])


def _subject_asked(hint_sub: str | None, claims: Mapping[str, Any]) -> str | None:
    """OIDC Core §3.1.2.2, §5.5.1: `sub` asked for with a value in the ID token may be answered only for
    that user, exactly what id_token_hint asks: the subject the flow requires (its `sub` as the client sees it)."""
    member = claims.get("id_token", {}).get("sub")
    value = member.get("value") if isinstance(member, Mapping) else None
    if value is None:
        return hint_sub
    if not isinstance(value, str) or not value or (hint_sub is not None and value != hint_sub):
        raise InvalidRequest("claims asks for a sub that is not the subject of id_token_hint")
    return value


def response_params(target: RedirectTarget, issuer: str, values: Mapping[str, str]) -> dict[str, str]:
    """Authorization response parameters with `state` and `iss` (RFC 9207 §2)."""
    out = dict(values)
    if target.state is not None:
        out["state"] = target.state
    out["iss"] = issuer
    return out


def query_redirect(target: RedirectTarget, params: Mapping[str, str]) -> str:
    sep = "&" if urlsplit(target.redirect_uri).query else "?"
    return target.redirect_uri + sep + urlencode(params)


def error_params(error: OAuthError) -> dict[str, str]:
    return error.as_dict()
