"""The authorization flow: after validation, decide between login, consent or a code (OIDC Core §3.1.2.3).

Framework-free: the web layer shows pages for `NeedInteraction` and sends `AuthorizationResponse`s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ..config import OidcSettings
from ..errors import ConsentRequired, LoginRequired
from ..store import Client
from ..store.grants import AuthorizationCode, CodeStore, InteractionStore
from ..store.identity import ConsentStore, Session, SessionStore, User, UserStore
from .authorize import (
    AuthorizationRequest,
    PageError,
    RedirectError,
    RedirectTarget,
    response_params,
    validate_request,
)
from .client_auth import ClientLookup
from .credentials import digest, new_token
from .keyring import KeyRing
from .user_tokens import GrantFacts
from .users import UserService

__all__ = ["AuthorizationFlow", "AuthorizationResponse", "NeedInteraction"]


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    target: RedirectTarget
    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class NeedInteraction:
    step: Literal["login", "consent", "select_account"]
    request: AuthorizationRequest


class AuthorizationFlow:
    def __init__(self, *, issuer: str, clients: ClientLookup, users: UserStore, user_service: UserService,
                 sessions: SessionStore, consents: ConsentStore, codes: CodeStore, interactions: InteractionStore,
                 keyring: KeyRing, settings: OidcSettings) -> None:
        self.issuer = issuer
        self.clients = clients
        self.users = users
        self.user_service = user_service
        self.sessions = sessions
        self.consents = consents
        self.codes = codes
        self.interactions = interactions
        self.keyring = keyring
        self.settings = settings

    async def validate(self, params: Mapping[str, str], repeated: Iterable[str]) -> AuthorizationRequest:
        return await validate_request(params, repeated, self.clients, self.keyring, self.issuer,
                                      pkce_required=self.settings.pkce_required)

    async def session(self, cookie: str | None) -> tuple[Session, User] | None:
        """The live session and its (enabled) user for a session cookie value."""
        if not cookie or len(cookie) > 128:
            return None
        session = await self.sessions.get(digest(cookie), int(time.time()))
        if session is None:
            return None
        user = await self.users.get(session.user_id)
        if user is None or user.disabled:
            return None
        return session, user

    async def decide(self, req: AuthorizationRequest, current: tuple[Session, User] | None, *,
                     login_done: bool = False, consent_done: bool = False) -> AuthorizationResponse | NeedInteraction:
        """The next step; raises RedirectError (login_required, consent_required) or PageError."""
        client = await self.clients.get(req.client_id)
        if client is None:
            raise PageError("invalid_client", "this application is no longer registered")
        now = int(time.time())
        needs_login = current is None
        if current is not None and not login_done:
            session, _ = current
            needs_login = (
                "login" in req.prompt
                or (req.max_age is not None and now - session.auth_time > req.max_age)
                or (req.id_token_hint_sub is not None and req.id_token_hint_sub != session.user_id)
            )
        if needs_login:
            if "none" in req.prompt:
                raise RedirectError(LoginRequired("the user is not logged in"), req.target)
            return NeedInteraction("login", req)
        assert current is not None
        session, user = current
        if "select_account" in req.prompt and not login_done and not consent_done:
            return NeedInteraction("select_account", req)
        if not consent_done and await self._needs_consent(req, client, user):
            if "none" in req.prompt:
                raise RedirectError(ConsentRequired("the user has not consented"), req.target)
            return NeedInteraction("consent", req)
        code = await self.issue_code(req, client, user, session)
        return AuthorizationResponse(req.target, response_params(req.target, self.issuer, {"code": code}))

    async def _needs_consent(self, req: AuthorizationRequest, client: Client, user: User) -> bool:
        if "consent" in req.prompt:
            return True
        if client.extra.get("skip_consent"):
            return False
        return not set(req.scope) <= await self.consents.get(user.id, client.client_id)

    async def issue_code(self, req: AuthorizationRequest, client: Client, user: User, session: Session) -> str:
        now = int(time.time())
        facts = GrantFacts(
            user_id=user.id, scope=req.scope, grant_id=new_token(16), auth_time=session.auth_time,
            expires_at=now + self.settings.refresh_token_lifetime, sid=session.sid, acr=session.acr,
            amr=session.amr, claims=dict(req.claims),
        )
        code = new_token(32)
        await self.codes.save(AuthorizationCode(
            digest=digest(code), client_id=client.client_id, grant_id=facts.grant_id,
            data={"redirect_uri": req.redirect_uri, "redirect_uri_given": req.redirect_uri_given,
                  "code_challenge": req.code_challenge, "nonce": req.nonce, "facts": facts.to_dict()},
            expires_at=now + self.settings.code_lifetime,
        ))
        await self.sessions.add_client(session.digest, client.client_id)
        return code

    async def log_in(self, user: User, previous_cookie: str | None) -> tuple[str, Session]:
        """A new session for `user` (always a new id: no session fixation); ends the previous one."""
        if previous_cookie:
            await self.sessions.delete(digest(previous_cookie))
        now = int(time.time())
        cookie = new_token(32)
        session = Session(digest=digest(cookie), sid=new_token(16), user_id=user.id, auth_time=now,
                          expires_at=now + self.settings.session_lifetime, amr=("pwd",))
        await self.sessions.create(session)
        return cookie, session

    async def start_interaction(self, req: AuthorizationRequest) -> str:
        interaction_id = new_token(24)
        await self.interactions.save(interaction_id, {"request": req.to_dict()},
                                     int(time.time()) + self.settings.interaction_lifetime)
        return interaction_id

    async def interaction(self, interaction_id: str) -> AuthorizationRequest | None:
        if len(interaction_id) > 64:
            return None
        data = await self.interactions.get(interaction_id, int(time.time()))
        return AuthorizationRequest.from_dict(data["request"]) if data else None
