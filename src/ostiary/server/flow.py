"""The authorization flow: after validation, decide between login, consent or a code (OIDC Core §3.1.2.3).

Framework-free: the web layer shows pages for `NeedInteraction` and sends `AuthorizationResponse`s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from ..config import OidcSettings
from ..errors import ConsentRequired, InteractionRequired, InvalidRequest, InvalidScope, LoginRequired, OAuthError
from ..smart.launch import LaunchContext
from ..smart.scopes import is_clinical
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
    step: Literal["login", "consent", "select_account", "select_patient"]
    request: AuthorizationRequest


class SmartLaunch(Protocol):
    """What the flow needs of SMART: the FHIR base URL (`aud`) and EHR launch values."""

    fhir_base_url: str

    async def resolve(self, value: str, client_id: str) -> LaunchContext: ...


class AuthorizationFlow:
    def __init__(self, *, issuer: str, clients: ClientLookup, users: UserStore, user_service: UserService,
                 sessions: SessionStore, consents: ConsentStore, codes: CodeStore, interactions: InteractionStore,
                 keyring: KeyRing, settings: OidcSettings, smart: SmartLaunch | None = None) -> None:
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
        self.smart = smart

    async def validate(self, params: Mapping[str, str], repeated: Iterable[str]) -> AuthorizationRequest:
        req = await validate_request(params, repeated, self.clients, self.keyring, self.issuer,
                                     pkce_required=self.settings.pkce_required)
        try:
            return await self._bind_launch(req)
        except OAuthError as exc:
            raise RedirectError(exc, req.target) from None

    async def _bind_launch(self, req: AuthorizationRequest) -> AuthorizationRequest:
        """SMART App Launch §"Authorization request": check `aud`, bind an EHR `launch` value."""
        smart = self.smart
        launch = req.extra.get("launch")
        wants_smart = launch is not None or any(is_clinical(s) or s.startswith("launch") for s in req.scope)
        if smart is None or (not wants_smart and "aud" not in req.extra):
            return req
        aud = req.extra.get("aud")
        if aud is None and wants_smart:
            raise InvalidRequest("aud is required: the FHIR server the app wants to use (SMART App Launch)")
        if aud is not None and aud.rstrip("/") != smart.fhir_base_url:
            raise InvalidRequest(f"aud {aud!r} is not a FHIR server of this authorization server")
        if "launch" in req.scope and launch is None:
            raise InvalidRequest("the launch scope needs a launch parameter (EHR launch)")
        if launch is None:
            return replace(req, context={})
        if "launch" not in req.scope:
            raise InvalidScope("a launch parameter needs the launch scope")
        context = await smart.resolve(launch, req.client_id)
        return replace(req, context=context.to_dict())

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
        if "launch/patient" in req.scope and not req.context.get("patient"):
            own = _own_patient(user)
            if own is not None:  # a patient who logs in is the patient in context
                req = replace(req, context={**req.context, "patient": own})
            elif "none" in req.prompt:
                raise RedirectError(InteractionRequired("a patient must be chosen"), req.target)
            else:
                return NeedInteraction("select_patient", req)
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
            amr=session.amr, claims=dict(req.claims), context=self._token_context(req),
            audience=(self.smart.fhir_base_url,) if self.smart and "aud" in req.extra else (),
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

    def _token_context(self, req: AuthorizationRequest) -> dict[str, Any]:
        if not req.context:
            return {}
        context = LaunchContext.from_dict(req.context)
        if context.need_patient_banner is None and context.patient:
            context = replace(context, need_patient_banner=True)  # standalone: the app shows who it is
        return context.token_response()

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


def _own_patient(user: User) -> str | None:
    """The Patient id of a user whose fhirUser is a Patient (SMART §fhirUser)."""
    fhir_user = str(user.claims.get("fhirUser", ""))
    kind, _, rest = fhir_user.rpartition("/")
    return rest if kind.endswith("Patient") and rest else None
