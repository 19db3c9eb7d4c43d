"""The upstream authorization code flow: begin (where to send the browser) and finish (the callback).

OIDC Core §3.1 with PKCE S256 (RFC 7636), `state` bound to this browser and interaction and usable
once, `nonce` in the ID token (§15.5.2), RFC 9207 `iss` in the response (required when the upstream
advertises it), and `prompt=login` / `max_age` forwarded so that a re-authentication asked of this
server cannot be met by an old upstream session (§3.1.2.1). What the browser carries between begin
and finish is a `PendingLogin`, which the web layer keeps sealed in a cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from ...client.auth_methods import ClientAuth, ClientSecretBasic, ClientSecretPost, NoClientAuth
from ...client.pkce import Pkce, s256
from ...client.secret import Secret
from ...config import FederationProvider
from ...store.protocols import ReplayCache
from ..consent import visible_text
from ..credentials import digest
from .id_token import Freshness, check_id_token, header_kid
from .upstream import UpstreamError, UpstreamProvider, fetch_json

__all__ = ["FederationFailed", "FederationLogin", "PendingLogin", "UpstreamIdentity"]

MAX_PARAM = 2048


class FederationFailed(UpstreamError):
    """The upstream sign-in failed; ``reason`` is for the log and audit, the user sees a generic page."""


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What begin handed the browser: kept sealed in a cookie until the callback."""

    provider: str
    state: str
    nonce: str
    code_verifier: str
    interaction_id: str
    started_at: int
    login: bool = False  # prompt=login was forwarded
    max_age: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingLogin | None:
        try:
            max_age = data.get("max_age")
            return cls(provider=str(data["provider"]), state=str(data["state"]), nonce=str(data["nonce"]),
                       code_verifier=str(data["code_verifier"]), interaction_id=str(data["interaction_id"]),
                       started_at=int(data["started_at"]), login=data.get("login") is True,
                       max_age=int(max_age) if isinstance(max_age, int) else None)
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class UpstreamIdentity:
    """An upstream account just verified: who (`provider`, `subject`), when and how, and its profile."""

    provider: str
    subject: str
    profile: Mapping[str, str]  # local claim names, mapped by the provider's `claims` table
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]

    @property
    def label(self) -> str:
        """What the account page shows for this identity (never used to match an account)."""
        shown = visible_text(self.profile.get("email") or self.profile.get("name") or "", 120)
        return shown or visible_text(self.subject, 120) or "(no name)"


class FederationLogin:
    def __init__(self, upstreams: Mapping[str, UpstreamProvider], issuer: str, http: httpx.AsyncClient,
                 replay: ReplayCache, lifetime: int) -> None:
        self.upstreams = upstreams
        self._issuer = issuer
        self._http = http
        self._replay = replay
        self._lifetime = lifetime

    async def aclose(self) -> None:
        await self._http.aclose()

    def redirect_uri(self, provider: str) -> str:
        return f"{self._issuer}/federation/{provider}/callback"

    async def begin(self, provider: str, interaction_id: str, *, login: bool, max_age: int | None,
                    now: int) -> tuple[str, PendingLogin]:
        """The upstream authorization URL and what to keep until the callback; raises FederationFailed."""
        upstream = self.upstreams[provider]
        try:
            meta = await upstream.metadata()
        except UpstreamError as exc:
            raise FederationFailed(exc.reason) from None
        pkce = Pkce.generate()
        pending = PendingLogin(provider=provider, state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                               code_verifier=pkce.code_verifier, interaction_id=interaction_id, started_at=now,
                               login=login, max_age=max_age)
        params = {"response_type": "code", "client_id": upstream.config.client_id,
                  "redirect_uri": self.redirect_uri(provider), "scope": " ".join(upstream.config.scopes),
                  "state": pending.state, "nonce": pending.nonce, "code_challenge": s256(pkce.code_verifier),
                  "code_challenge_method": "S256"}
        if login:
            params["prompt"] = "login"
        if max_age is not None:
            params["max_age"] = str(max_age)
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        return meta.authorization_endpoint + separator + urlencode(params), pending

    async def finish(self, pending: PendingLogin, provider: str, params: Mapping[str, str], now: int, *,
                     repeated: bool = False) -> UpstreamIdentity:
        """The identity the callback proves (`repeated`: a parameter came twice); raises FederationFailed."""
        try:
            return await self._finish(pending, provider, params, now, repeated)
        except UpstreamError as exc:
            raise FederationFailed(exc.reason) from None

    async def _finish(self, pending: PendingLogin, provider: str, params: Mapping[str, str],
                      now: int, repeated: bool) -> UpstreamIdentity:
        if repeated:
            raise UpstreamError("a parameter was repeated in the response (RFC 6749 §3.1)")
        state = params.get("state", "")
        if provider != pending.provider or len(state) > MAX_PARAM or not hmac.compare_digest(
                state.encode(), pending.state.encode()):
            raise UpstreamError("state does not match the one sent from this browser")
        if now - pending.started_at > self._lifetime:
            raise UpstreamError("the upstream sign-in took too long")
        if not await self._replay.first_use("federation-state:" + digest(pending.state), now + self._lifetime):
            raise UpstreamError("state already used")  # a replayed callback
        upstream = self.upstreams[provider]
        meta = await upstream.metadata()
        iss = params.get("iss")
        if iss is not None and iss != meta.issuer:  # RFC 9207 §2.4: mix-up
            raise UpstreamError("iss in the response is not the provider's issuer")
        if iss is None and meta.iss_parameter:
            raise UpstreamError("the provider advertises iss in responses and sent none (RFC 9207 §2.4)")
        if "error" in params:
            raise UpstreamError(f"the provider answered error={params['error'][:64]!r}")
        code = params.get("code", "")
        if not code or len(code) > MAX_PARAM:
            raise UpstreamError("no usable code in the response")
        tokens = await self._redeem(upstream, meta.token_endpoint, meta.token_auth_methods, code, pending)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamError("the token response has no id_token")
        claims = check_id_token(
            id_token, await upstream.keys(header_kid(id_token)), issuer=meta.issuer,
            client_id=upstream.config.client_id, nonce=pending.nonce, algorithms=upstream.config.algorithms,
            freshness=Freshness(pending.started_at, pending.login, pending.max_age), now=now,
            leeway=upstream.config.clock_skew)
        profile_source = dict(claims)
        access_token = tokens.get("access_token")
        if upstream.config.userinfo and meta.userinfo_endpoint and isinstance(access_token, str):
            profile_source.update(await self._userinfo(meta.userinfo_endpoint, access_token, claims["sub"]))
        return _identity(upstream, claims, profile_source)

    async def _redeem(self, upstream: UpstreamProvider, endpoint: str, methods: tuple[str, ...], code: str,
                      pending: PendingLogin) -> Mapping[str, Any]:
        config = upstream.config
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri(config.id),
                "code_verifier": pending.code_verifier}
        headers: dict[str, str] = {}
        _client_auth(config, methods).apply(endpoint, headers, form)
        status, body = await fetch_json(self._http, "POST", endpoint, data=form, headers=headers)
        if status != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise UpstreamError(f"the token endpoint answered {status} {str(error)[:64] if error else ''}".strip())
        return body

    async def _userinfo(self, endpoint: str, access_token: str, sub: str) -> Mapping[str, Any]:
        status, body = await fetch_json(self._http, "GET", endpoint,
                                        headers={"Authorization": f"Bearer {access_token}"})
        if status != 200 or not isinstance(body, dict):
            raise UpstreamError(f"userinfo answered {status}")
        if body.get("sub") != sub:  # OIDC Core §5.3.2: the UserInfo sub MUST equal the ID token's
            raise UpstreamError("userinfo is about another subject")
        return body


def _client_auth(config: FederationProvider, methods: tuple[str, ...]) -> ClientAuth:
    """How this server authenticates to the upstream's token endpoint (RFC 6749 §2.3.1)."""
    if not config.client_secret:
        return NoClientAuth(config.client_id)  # a public client: PKCE alone (RFC 6749 §3.2.1)
    if "client_secret_basic" in methods or "client_secret_post" not in methods:
        return ClientSecretBasic(config.client_id, Secret(config.client_secret))
    return ClientSecretPost(config.client_id, Secret(config.client_secret))


# RFC 8176 §2 registered values and the factor class each stands for (NIST SP 800-63B).
AMR_CLASSES: Mapping[str, str | None] = {
    "pwd": "knowledge", "pin": "knowledge", "kba": "knowledge",
    "otp": "possession", "hwk": "possession", "swk": "possession", "sms": "possession", "tel": "possession",
    "sc": "possession", "pop": "possession",
    "fpt": "inherence", "face": "inherence", "iris": "inherence", "retina": "inherence", "vbm": "inherence",
    "geo": None, "mca": None, "mfa": None, "rba": None, "user": None, "wia": None,
}


def _identity(upstream: UpstreamProvider, claims: Mapping[str, Any],
              source: Mapping[str, Any]) -> UpstreamIdentity:
    config = upstream.config
    profile = {local: str(source[remote])[:255] for local, remote in config.claims.items()
               if isinstance(source.get(remote), str | int | float) and not isinstance(source.get(remote), bool)}
    acr = claims.get("acr") if config.trust_acr and isinstance(claims.get("acr"), str) else None
    amr_claim = claims.get("amr") if config.trust_amr else None
    amr = tuple(dict.fromkeys(v for v in amr_claim if isinstance(v, str) and v in AMR_CLASSES)) \
        if isinstance(amr_claim, list) else ()
    auth_time = claims.get("auth_time")
    return UpstreamIdentity(provider=config.id, subject=str(claims["sub"]), profile=profile,
                            auth_time=auth_time if isinstance(auth_time, int) else None,
                            acr=acr[:255] if acr else None, amr=amr)
