"""Client authentication (RFC 6749 §2.3, RFC 7523 §2.2, OIDC Core §9): one function per method.

The method a request uses is read from the request; it must be the one the client registered
(`token_endpoint_auth_method`), and a request may use only one (RFC 6749 §2.3).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_plus

from joserfc.jwk import OctKey

from .. import jwt
from ..errors import ClientAuthThrottled, InvalidClient, InvalidRequest, OAuthError
from ..keys import ASYMMETRIC_ALGS, HMAC_ALGS
from ..store import Client, ReplayCache
from ..store.identity import LoginThrottle, ThrottleRule
from .audit import audit
from .client_keys import ClientKeyResolver
from .credentials import digest, matches
from .policy.grants import scope_kind
from .requests import EndpointRequest

__all__ = ["AUTH_METHODS", "JWT_BEARER", "ClientAuthenticator", "ClientLookup", "FailureThrottle", "presented_method"]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientLookup(Protocol):
    async def get(self, client_id: str) -> Client | None: ...


@dataclass(frozen=True, slots=True)
class Presented:
    method: str
    client_id: str
    secret: str | None = None
    assertion: str | None = None


def _basic(header: str) -> Presented:
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII header text; UnicodeDecodeError too
        raise InvalidClient("malformed Basic credentials") from None
    if ":" not in raw:
        raise InvalidClient("malformed Basic credentials")
    user, _, password = raw.partition(":")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded ("+" is a space) before Basic encoding.
    return Presented("client_secret_basic", unquote_plus(user), secret=unquote_plus(password))


def presented_method(request: EndpointRequest) -> Presented | None:
    """Which authentication the request presents; raises InvalidRequest if it presents several."""
    form = request.form
    found: list[Presented] = []
    auth = request.authorization
    if auth and auth[:6].lower() == "basic ":
        found.append(_basic(auth))
    if "client_assertion" in form or "client_assertion_type" in form:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise InvalidRequest(f"client_assertion_type must be {JWT_BEARER}")
        if "client_assertion" not in form:
            raise InvalidRequest("client_assertion is missing")
        claims = _unverified_claims(form["client_assertion"])
        alg = claims[1]
        method = "client_secret_jwt" if alg in HMAC_ALGS else "private_key_jwt"
        found.append(Presented(method, claims[0], assertion=form["client_assertion"]))
    if "client_secret" in form:
        if "client_id" not in form:
            raise InvalidRequest("client_secret without client_id")
        found.append(Presented("client_secret_post", form["client_id"], secret=form["client_secret"]))
    if len(found) > 1:
        raise InvalidRequest("more than one client authentication method was used")
    if found:
        if "client_id" in form and form["client_id"] != found[0].client_id:
            raise InvalidRequest("client_id does not match the client's credentials")
        return found[0]
    if "client_id" in form:
        return Presented("none", form["client_id"])
    return None


def _unverified_claims(assertion: str) -> tuple[str, str]:
    try:
        decoded = jwt.decode_unverified(assertion)
    except jwt.JWTInvalid as exc:
        raise InvalidClient(f"client_assertion: {exc.reason}") from None
    sub = decoded.claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidClient("client_assertion: sub must be the client_id")
    return sub, str(decoded.header.get("alg"))


@dataclass(frozen=True, slots=True)
class AssertionRules:
    """What an assertion's `aud` may be and how long it may live (RFC 7523 §3)."""

    audiences: frozenset[str]
    max_lifetime: int
    leeway: int = jwt.DEFAULT_LEEWAY
    # SMART Backend Services: a backend client's (one holding system/ scopes) assertion `exp` SHALL be
    # no more than five minutes ahead; None when SMART is off.
    backend_max_lifetime: int | None = None

    def lifetime_for(self, client: Client) -> int:
        if self.backend_max_lifetime is not None and any(scope_kind(s) == "system" for s in client.scopes):
            return min(self.max_lifetime, self.backend_max_lifetime)
        return self.max_lifetime


Verifier = Callable[["ClientAuthenticator", Presented, Client, EndpointRequest], Awaitable[None]]


async def _verify_secret(auth: ClientAuthenticator, p: Presented, client: Client, _: EndpointRequest) -> None:
    if p.secret is None or not matches(p.secret, client.secret_digest):
        raise InvalidClient("invalid client credentials")
    if client.extra.get("client_secret_expires_at", 0) and client.extra["client_secret_expires_at"] < time.time():
        raise InvalidClient("the client secret has expired")


async def _verify_none(auth: ClientAuthenticator, p: Presented, client: Client, _: EndpointRequest) -> None:
    return None


async def _verify_assertion(auth: ClientAuthenticator, p: Presented, client: Client, req: EndpointRequest) -> None:
    assert p.assertion is not None
    registered = client.token_endpoint_auth_signing_alg
    if p.method == "client_secret_jwt":
        secret = auth.unseal(client.sealed_secret) if client.sealed_secret else None
        if secret is None:
            raise InvalidClient("no shared secret is available for client_secret_jwt")
        keys: object = OctKey.import_key(secret.encode())
        algorithms = [registered] if registered else list(HMAC_ALGS)
    else:
        header = jwt.decode_unverified(p.assertion).header
        # SMART Backend Services / RFC 7515 §4.1.2: keys come only from what was registered. A `jku`
        # naming any other URL (an attacker's key set) is refused, never fetched.
        if "jku" in header and (client.jwks_uri is None or header["jku"] != client.jwks_uri):
            raise InvalidClient("client_assertion: jku is not the client's registered jwks_uri")
        kid = header.get("kid")
        keys = await auth.key_resolver.keys_for(
            jwks=client.jwks, jwks_uri=client.jwks_uri, kid=kid if isinstance(kid, str) else None
        )
        algorithms = [registered] if registered else list(ASYMMETRIC_ALGS)
    rules = auth.rules
    audiences = rules.audiences | {req.endpoint_url}
    try:
        verified = jwt.verify(
            p.assertion, keys, algorithms=algorithms, audience=audiences,  # type: ignore[arg-type]
            issuer=client.client_id, leeway=rules.leeway, required=("exp", "jti", "iss", "sub", "aud"),
        )
    except jwt.JWTInvalid as exc:
        raise InvalidClient(f"client_assertion: {exc.reason}") from None
    claims = verified.claims
    exp = claims["exp"]
    max_lifetime = rules.lifetime_for(client)
    if exp - time.time() > max_lifetime + rules.leeway:
        raise InvalidClient(f"client_assertion: exp is more than {max_lifetime} s ahead")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 200 or "\x00" in jti:  # NUL: PostgreSQL text
        raise InvalidClient("client_assertion: jti must be a non-empty string")
    # RFC 7523 §3 item 7: the server may reject a replayed jti; we always do.
    # Hashed: client_id (<= 255) + jti (<= 200) would overflow the replay key column (255).
    replay_key = "assertion:" + digest(f"{client.client_id}:{jti}")
    if not await auth.replay.first_use(replay_key, int(exp) + rules.leeway):
        raise InvalidClient("client_assertion: jti has already been used")


# RFC 6749 §2.3.1: a client issued a password MUST be able to use HTTP Basic. The registered method
# binds the token endpoint (RFC 7591 §2); at revocation and introspection either form of the secret is
# accepted (Authlib, for one, revokes with client_secret_basic whatever the client registered).
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})

AUTH_METHODS: Mapping[str, Verifier] = {
    "client_secret_basic": _verify_secret,
    "client_secret_post": _verify_secret,
    "client_secret_jwt": _verify_assertion,
    "private_key_jwt": _verify_assertion,
    "none": _verify_none,
}


INVALID_CLIENT = "client authentication failed"


class FailureThrottle:
    """Repeated invalid_client from one client_id and address: progressive delays, answered 429.

    Only failures are counted and only failures are refused, after the credentials were checked:
    a request whose credentials verify is never delayed, whoever else guesses at the same client.
    """

    def __init__(self, counters: LoginThrottle, rule: ThrottleRule) -> None:
        self._counters = counters
        self._rule = rule

    async def failed(self, request: EndpointRequest) -> None:
        """Count a failure; raises ClientAuthThrottled if this key must still wait."""
        try:
            found = presented_method(request)
        except OAuthError:
            found = None
        client_id = found.client_id if found is not None else ""
        key = "client:" + digest(f"{client_id}\n{request.client_address}")
        wait = await self._counters.attempt(key, self._rule, int(time.time()))
        if wait:
            audit("client_auth_throttled", endpoint=request.endpoint_url, client_id=client_id[:255],
                  address=request.client_address, retry_after=wait)
            raise ClientAuthThrottled(wait)


class ClientAuthenticator:
    def __init__(self, clients: ClientLookup, replay: ReplayCache, key_resolver: ClientKeyResolver,
                 rules: AssertionRules, unseal: Callable[[str], str | None],
                 throttle: FailureThrottle | None = None) -> None:
        self.clients = clients
        self.replay = replay
        self.key_resolver = key_resolver
        self.rules = rules
        self.unseal = unseal
        self.throttle = throttle

    async def authenticate(self, request: EndpointRequest, *, allow_public: bool,
                           token_endpoint: bool = True) -> Client:
        """The authenticated client; raises InvalidClient (401) or InvalidRequest."""
        try:
            return await self._authenticate(request, allow_public, token_endpoint)
        except InvalidClient as exc:
            presented = request.form.get("client_id")
            audit("client_auth_failed", endpoint=request.endpoint_url, client_id=presented, reason=exc.description)
            if self.throttle is not None:
                await self.throttle.failed(request)
            # One answer whatever the cause (unknown client, wrong secret or method, bad assertion): the
            # reason is for the operator's audit log, not for whoever probes client ids.
            raise InvalidClient(INVALID_CLIENT) from None

    async def _authenticate(self, request: EndpointRequest, allow_public: bool, token_endpoint: bool) -> Client:
        presented = presented_method(request)
        if presented is None:
            raise InvalidClient("client authentication is required")
        client = await self.clients.get(presented.client_id)
        if client is None:
            raise InvalidClient("unknown client or invalid client credentials")
        either_secret = not token_endpoint and {presented.method, client.token_endpoint_auth_method} <= SECRET_METHODS
        if presented.method != client.token_endpoint_auth_method and not either_secret:
            raise InvalidClient(
                f"the client is registered for {client.token_endpoint_auth_method}, not {presented.method}"
            )
        if presented.method == "none" and not allow_public:
            raise InvalidClient("this endpoint requires client authentication")
        await AUTH_METHODS[presented.method](self, presented, client, request)
        return client
