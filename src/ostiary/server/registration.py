"""Client registration: metadata validation (RFC 7591 §2) and the one registry the CLI and /register share."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ..errors import InvalidClientMetadata, InvalidRedirectUri, NotFound
from ..keys import ASYMMETRIC_ALGS, HMAC_ALGS, KeyError_
from ..outbound import SafeFetcher, url_refusal
from ..store import Client, ClientExists, ClientStore, TrustLevel
from .audit import audit
from .client_auth import AUTH_METHODS
from .client_keys import key_set_from_jwks
from .credentials import digest, new_secret, new_token
from .policy.clients import ADMIN_ONLY, OPENID_RULES, ClientRules
from .policy.levels import LEVELS
from .redirect_uris import RedirectUriRefused, check_redirect_uri
from .scopes import parse_scope
from .signin.requirement import CLIENT_LEVEL_FIELD
from .subjects import check_sector

__all__ = ["ClientRegistry", "IssuedCredentials", "validate_metadata", "validate_redirect_uri"]

_STRING_EXTRAS = ("client_uri", "logo_uri", "tos_uri", "policy_uri", "software_id", "software_version",
                  "id_token_signed_response_alg", "userinfo_signed_response_alg", "backchannel_logout_uri",
                  "application_type", "subject_type", "initiate_login_uri", "software_statement",
                  "sector_identifier_uri", "frontchannel_logout_uri")
_LIST_EXTRAS = ("contacts", "allowed_cors_origins", "default_acr_values")
_BOOL_EXTRAS = ("backchannel_logout_session_required", "frontchannel_logout_session_required", "require_auth_time")
_INT_EXTRAS = ("default_max_age",)
# Admin-only choices (policy.clients.ADMIN_ONLY) kept in `extra`, each with its allowed values.
_CHOICE_EXTRAS: Mapping[str, tuple[str, ...]] = {"openid_on_client_credentials": OPENID_RULES,
                                                 CLIENT_LEVEL_FIELD: LEVELS}
_FETCHED_URLS = ("jwks_uri", "backchannel_logout_uri", "logo_uri", "sector_identifier_uri")
_ADMIN_FLAGS = ("skip_consent", "resource_server", "system_scopes_with_secret")
_RESPONSE_TYPES_FOR = {"authorization_code": "code"}
MAX_TOKEN_LIFETIME = 7 * 24 * 3600
SECTOR_FETCH_DEADLINE = 5.0  # seconds for the whole sector_identifier_uri fetch


def _split(uri: str, error: type[InvalidClientMetadata] | type[InvalidRedirectUri] = InvalidClientMetadata
           ) -> SplitResult:
    """urlsplit, but a malformed URI (e.g. "http://[::1") is the caller's error, not a 500."""
    try:
        return urlsplit(uri)
    except ValueError:
        raise error(f"{uri!r} is not a valid URI") from None


def validate_redirect_uri(uri: str, *, error: type[InvalidClientMetadata] | type[InvalidRedirectUri]
                          = InvalidRedirectUri) -> str:
    """`uri` if it may be registered (see redirect_uris); raises `error` with the reason."""
    try:
        return check_redirect_uri(uri)
    except RedirectUriRefused as exc:
        raise error(str(exc)) from None


def _str_list(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    return tuple(dict.fromkeys(value))


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidClientMetadata(f"{name} must be a string")
    return value or None


def validate_metadata(data: Mapping[str, Any], *, grant_types_supported: Collection[str],
                      allow_loopback: bool = False, id_token_algs: Collection[str] = ASYMMETRIC_ALGS
                      ) -> dict[str, Any]:
    """Normalised client fields from RFC 7591 metadata; raises InvalidClientMetadata / InvalidRedirectUri.

    Metadata we do not understand is ignored (RFC 7591 §2). Who may set what is the policy's
    decision (`ClientRules`), taken before and after this. URLs the server (or a user's browser, a
    logo) requests follow the safe fetcher's rules (`allow_loopback`: its development setting).
    """
    if not isinstance(data, Mapping):
        raise InvalidClientMetadata("client metadata must be a JSON object")
    method = _optional_str(data, "token_endpoint_auth_method") or "client_secret_basic"
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(f"token_endpoint_auth_method {method!r} is not supported")
    default_grant = "authorization_code" if "authorization_code" in grant_types_supported else "client_credentials"
    grant_types = _str_list(data, "grant_types") or (default_grant,)
    for grant in grant_types:
        if grant not in grant_types_supported:
            raise InvalidClientMetadata(f"grant type {grant!r} is not supported")
    if method == "none" and "client_credentials" in grant_types:
        raise InvalidClientMetadata("a public client (auth method none) cannot use client_credentials")
    implied = tuple(dict.fromkeys(_RESPONSE_TYPES_FOR[g] for g in grant_types if g in _RESPONSE_TYPES_FOR))
    response_types = _str_list(data, "response_types") if "response_types" in data else implied
    if set(response_types) != set(implied):  # RFC 7591 §2.1: they must agree
        raise InvalidClientMetadata("response_types do not match grant_types")
    redirect_uris = tuple(validate_redirect_uri(u) for u in _str_list(data, "redirect_uris"))
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidRedirectUri("authorization_code clients need at least one redirect URI")
    post_logout = tuple(validate_redirect_uri(u, error=InvalidClientMetadata)
                        for u in _str_list(data, "post_logout_redirect_uris"))
    _check_frontchannel_uri(data.get("frontchannel_logout_uri"), redirect_uris)
    scope = data.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidClientMetadata("scope must be a space-separated string")
    try:
        scope = " ".join(parse_scope(scope))
    except Exception:
        raise InvalidClientMetadata("scope contains invalid characters") from None
    jwks, jwks_uri = data.get("jwks"), _optional_str(data, "jwks_uri")
    if jwks is not None and jwks_uri is not None:
        raise InvalidClientMetadata("jwks and jwks_uri must not both be given (RFC 7591 §2)")
    if jwks is not None:
        if not isinstance(jwks, dict):
            raise InvalidClientMetadata("jwks must be a JWK Set object")
        try:
            key_set_from_jwks(jwks)
        except KeyError_ as exc:
            raise InvalidClientMetadata(f"jwks: {exc}") from None
    if method == "private_key_jwt" and not (jwks or jwks_uri):
        raise InvalidClientMetadata("private_key_jwt needs jwks or jwks_uri")
    signing_alg = _optional_str(data, "token_endpoint_auth_signing_alg")
    if signing_alg is not None:
        allowed_algs = HMAC_ALGS if method == "client_secret_jwt" else ASYMMETRIC_ALGS
        if signing_alg not in allowed_algs:
            raise InvalidClientMetadata(f"token_endpoint_auth_signing_alg {signing_alg!r} does not fit {method}")
    fmt = _optional_str(data, "access_token_format")
    if fmt not in (None, "jwt", "opaque"):
        raise InvalidClientMetadata("access_token_format must be jwt or opaque")
    lifetime = data.get("access_token_lifetime")
    if lifetime is not None and (
        not isinstance(lifetime, int) or isinstance(lifetime, bool) or not 1 <= lifetime <= MAX_TOKEN_LIFETIME
    ):
        raise InvalidClientMetadata(f"access_token_lifetime must be 1..{MAX_TOKEN_LIFETIME} seconds")
    audiences = _str_list(data, "audiences")
    for aud in audiences:
        if not _split(aud).scheme or "#" in aud:
            raise InvalidClientMetadata(f"audience {aud!r} must be an absolute URI without fragment")
    id_alg = data.get("id_token_signed_response_alg")
    if id_alg is not None and id_alg not in id_token_algs:  # only algs the server has keys for
        raise InvalidClientMetadata(f"id_token_signed_response_alg {id_alg!r} is not supported")
    for name in ("backchannel_logout_uri", "frontchannel_logout_uri", "sector_identifier_uri", "client_uri",
                 "logo_uri", "policy_uri", "tos_uri", "initiate_login_uri"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or _split(value).scheme not in ("https", "http")):
            raise InvalidClientMetadata(f"{name} must be an http(s) URL")
    for name in _FETCHED_URLS:  # SSRF (issue 13 item 8): refused here, not first at fetch time
        value = data.get(name)
        refusal = url_refusal(value, allow_loopback=allow_loopback) if isinstance(value, str) else None
        if refusal is not None:
            raise InvalidClientMetadata(f"{name} must be an https URL of a public host ({refusal})")
    for origin in data.get("allowed_cors_origins") or []:
        o = _split(origin) if isinstance(origin, str) else None
        if o is None or o.scheme not in ("https", "http") or not o.netloc or o.path not in ("", "/"):
            raise InvalidClientMetadata(f"allowed_cors_origins entry {origin!r} must be an origin like https://app.example")
    name = data.get("client_name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidClientMetadata("client_name must be a string of at most 200 characters")
    return {
        "client_name": name, "token_endpoint_auth_method": method,
        "token_endpoint_auth_signing_alg": signing_alg, "grant_types": grant_types,
        "response_types": response_types, "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout, "scope": scope, "jwks": jwks, "jwks_uri": jwks_uri,
        "access_token_format": fmt, "access_token_lifetime": lifetime, "audiences": audiences,
        "extra": _extras(data), **_admin_flags(data),
    }


def _check_frontchannel_uri(uri: Any, redirect_uris: Collection[str]) -> None:
    """Front-Channel Logout 1.0 §2: scheme, host and port of a registered redirect URI; no fragment."""
    if uri is None:
        return
    parts = _split(uri) if isinstance(uri, str) else None
    origins = {(r.scheme, r.netloc) for r in map(urlsplit, redirect_uris)}
    if parts is None or parts.fragment or (parts.scheme, parts.netloc) not in origins:
        raise InvalidClientMetadata("frontchannel_logout_uri must have the scheme, host and port of a registered "
                                    "redirect URI (OpenID Connect Front-Channel Logout 1.0 §2)")


_TRUST_LEVELS: Mapping[str, TrustLevel] = {"admin": "admin", "registrant": "registrant", "open": "open",
                                           "portal": "portal"}


def _trust_level(value: Any) -> TrustLevel:
    level = _TRUST_LEVELS.get(value) if isinstance(value, str) else None
    if level is None:
        raise InvalidClientMetadata(f"trust_level must be one of {', '.join(_TRUST_LEVELS)}")
    return level


def _admin_flags(data: Mapping[str, Any]) -> dict[str, bool]:
    flags = {name: data.get(name, False) for name in _ADMIN_FLAGS}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise InvalidClientMetadata(f"{name} must be a boolean")
    return flags


def _extras(data: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for name in _STRING_EXTRAS:
        if name in data:
            extra[name] = _optional_str(data, name)
    for name in _LIST_EXTRAS:
        if name in data:
            extra[name] = list(_str_list(data, name))
    for name in _BOOL_EXTRAS:
        if name in data:
            if not isinstance(data[name], bool):
                raise InvalidClientMetadata(f"{name} must be a boolean")
            extra[name] = data[name]
    for name in _INT_EXTRAS:
        if name in data:
            if not isinstance(data[name], int) or isinstance(data[name], bool) or data[name] < 0:
                raise InvalidClientMetadata(f"{name} must be a non-negative integer")
            extra[name] = data[name]
    for name, values in _CHOICE_EXTRAS.items():
        if data.get(name) is not None and data[name] not in values:
            raise InvalidClientMetadata(f"{name} must be one of {', '.join(values)}")
        if data.get(name) is not None:
            extra[name] = data[name]
    return {k: v for k, v in extra.items() if v is not None}


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """Secrets shown once, at creation or rotation."""

    client_secret: str | None = None
    registration_access_token: str | None = None


class ClientRegistry:
    def __init__(self, store: ClientStore, seal: Callable[[str], str],
                 grant_types_supported: Collection[str], rules: ClientRules | None = None, *,
                 allow_loopback: bool = False, fetcher: SafeFetcher | None = None,
                 id_token_algs: Collection[str] = ASYMMETRIC_ALGS) -> None:
        self._store = store
        self._id_token_algs = tuple(id_token_algs)  # id_tokens.id_token_algs: those with a signing key
        self._allow_loopback = allow_loopback  # outbound.allow_loopback: loopback URLs in development
        self._fetcher = fetcher  # sector_identifier_uri (OIDC Registration §5)
        self._seal = seal
        self.grant_types_supported = tuple(grant_types_supported)
        self.rules = rules or ClientRules()

    def _checked(self, level: TrustLevel, metadata: Mapping[str, Any], current: Client | None,
                 by_client: bool = False) -> dict[str, Any]:
        """Validated fields within what `level` may register (docs/security.md "Client trust levels");
        `by_client`: the client edits itself (RFC 7592), whatever its level, never as an operator."""
        stored = {k: v for k, v in describe(current).items() if k in ADMIN_ONLY} if current else None
        rule = self.rules.rule_for(level, current if by_client else None)
        operator = rule is None
        data = self.rules.check_admin_only(rule, metadata, stored)
        fields = validate_metadata(data, grant_types_supported=self.grant_types_supported,
                                   allow_loopback=self._allow_loopback, id_token_algs=self._id_token_algs)
        # The client's level: an operator may set it; otherwise it keeps its own (or the registrar's).
        target = current.trust_level if current else level
        if operator and data.get("trust_level") is not None:
            target = _trust_level(data["trust_level"])
        if target != "admin" and not fields["scope"]:  # a SMART app registered bare can still launch
            fields["scope"] = self.rules.default_scope(target, fields["grant_types"])
        try:
            self.rules.check_fields(target, fields, None if operator else rule)
        except InvalidClientMetadata as exc:
            if not operator:
                raise
            raise InvalidClientMetadata(f"{exc.description}; it is a {target} client (an operator may set "
                                        "--trust-level admin)") from None
        fields["trust_level"] = target
        return fields

    def _secret_fields(self, method: str, secret: str | None) -> dict[str, Any]:
        if method in ("none", "private_key_jwt"):
            return {"secret_digest": None, "sealed_secret": None}
        assert secret is not None
        return {"secret_digest": digest(secret),
                "sealed_secret": self._seal(secret) if method == "client_secret_jwt" else None}

    async def create(self, metadata: Mapping[str, Any], *, client_id: str | None = None,
                     client_secret: str | None = None, registration_token: bool = False,
                     level: TrustLevel = "admin") -> tuple[Client, IssuedCredentials]:
        """Register a client at trust `level`; raises InvalidClientMetadata, InvalidRedirectUri or ClientExists."""
        fields = self._checked(level, metadata, None)
        await check_sector(fields, self._fetcher, SECTOR_FETCH_DEADLINE)
        method = fields["token_endpoint_auth_method"]
        needs_secret = method not in ("none", "private_key_jwt")
        secret = (client_secret or new_secret()) if needs_secret else None
        rat = new_token() if registration_token else None
        client = Client(
            client_id=client_id or new_token(16), **fields, **self._secret_fields(method, secret),
            registration_token_digest=digest(rat) if rat else None,
            sealed_registration_token=self._seal(rat) if rat else None,
        )
        await self._store.create(client)
        audit("client_registered", client_id=client.client_id, method=method, grant_types=list(client.grant_types),
              trust_level=client.trust_level)
        return client, IssuedCredentials(client_secret=secret, registration_access_token=rat)

    async def update(self, client_id: str, metadata: Mapping[str, Any], *, level: TrustLevel = "admin",
                     by_client: bool = False) -> tuple[Client, IssuedCredentials]:
        """Replace a client's metadata as `level` may (`by_client`: the client itself, RFC 7592, never
        as an operator); a new secret is issued only if the method now needs one.

        RFC 7592 §2.2: admin-only fields left out keep their values; sent unchanged they are accepted.
        """
        current = await self._store.get(client_id)
        if current is None:
            raise NotFound(f"no client {client_id!r}")
        fields = self._checked(level, metadata, current, by_client)
        await check_sector(fields, self._fetcher, SECTOR_FETCH_DEADLINE)
        method = fields["token_endpoint_auth_method"]
        issued = IssuedCredentials()
        changed = replace(current, **fields, updated_at=int(time.time()))
        had_secret = current.secret_digest is not None
        needs_seal = method == "client_secret_jwt" and current.sealed_secret is None
        if method in ("none", "private_key_jwt"):
            changed = replace(changed, **self._secret_fields(method, None))
        elif not had_secret or needs_seal:
            secret = new_secret()
            changed = replace(changed, **self._secret_fields(method, secret))
            issued = IssuedCredentials(client_secret=secret)
        elif method != "client_secret_jwt":
            changed = replace(changed, sealed_secret=None)
        await self._store.update(changed)
        return changed, issued

    async def rotate_secret(self, client_id: str) -> tuple[Client, str]:
        current = await self._store.get(client_id)
        if current is None:
            raise NotFound(f"no client {client_id!r}")
        if current.token_endpoint_auth_method in ("none", "private_key_jwt"):
            raise InvalidClientMetadata(f"a {current.token_endpoint_auth_method} client has no secret")
        secret = new_secret()
        changed = replace(current, **self._secret_fields(current.token_endpoint_auth_method, secret),
                          updated_at=int(time.time()))
        await self._store.update(changed)
        audit("client_secret_rotated", client_id=client_id)
        return changed, secret

    async def delete(self, client_id: str) -> bool:
        deleted = await self._store.delete(client_id)
        if deleted:
            audit("client_deleted", client_id=client_id)
        return deleted


def describe(client: Client) -> dict[str, Any]:
    """The client's metadata as RFC 7591 §3.2.1 returns it (never a secret or digest)."""
    out: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.client_name,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "redirect_uris": list(client.redirect_uris),
        "scope": client.scope,
    }
    if client.secret_digest:
        out["client_secret_expires_at"] = client.extra.get("client_secret_expires_at", 0)
    optional = {
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris) or None,
        "token_endpoint_auth_signing_alg": client.token_endpoint_auth_signing_alg,
        "jwks": dict(client.jwks) if client.jwks else None,
        "jwks_uri": client.jwks_uri,
        "access_token_format": client.access_token_format,
        "access_token_lifetime": client.access_token_lifetime,
        "audiences": list(client.audiences) or None,
        "trust_level": client.trust_level,
        **{name: True for name in _ADMIN_FLAGS if getattr(client, name)},
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    out.update(client.extra)
    return out


__all__ += ["ClientExists", "describe"]
