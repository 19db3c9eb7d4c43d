"""The authorization flow: after validation, decide between login, consent or a code (OIDC Core §3.1.2.3).

Framework-free: the web layer shows pages for `NeedInteraction` and sends `AuthorizationResponse`s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..config import OidcSettings
from ..errors import (
    AccessDenied,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    PageError,
    RedirectError,
    RedirectTarget,
)
from ..smart.launch import LaunchContext
from ..smart.scopes import is_clinical
from ..store import Client
from ..store.grants import AuthorizationCode, CodeStore, InteractionStore
from ..store.identity import ConsentStore, Session, SessionStore, User, UserStore
from .audit import audit
from .authorize import (
    AuthorizationRequest,
    response_params,
    validate_request,
)
from .client_auth import ClientLookup
from .consent import ConsentService
from .credentials import digest, is_token, new_token
from .interaction import Authentication, Interaction, Step
from .keyring import KeyRing
from .patient_access import PatientAccess
from .policy.levels import PASSWORD
from .signin.authentication import UserAuthentication
from .signin.requirement import LevelPolicy
from .signin.steps import State, first_due
from .subjects import SubjectMapper
from .user_tokens import GrantFacts
from .users import UserService

__all__ = ["AuthorizationFlow", "AuthorizationResponse", "NeedInteraction"]


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    target: RedirectTarget
    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class NeedInteraction:
    step: Step
    request: AuthorizationRequest


class SmartLaunch(Protocol):
    """What the flow needs of SMART: the FHIR base URL (`aud`) and EHR launch values."""

    fhir_base_url: str
    audiences: frozenset[str]  # every valid `aud`: the FHIR base and the admin-registered gateways

    async def resolve(self, value: str, client_id: str) -> LaunchContext: ...
    async def consume(self, value: str, client_id: str) -> LaunchContext: ...


class AuthorizationFlow:
    def __init__(self, *, issuer: str, clients: ClientLookup, users: UserStore, user_service: UserService,
                 sessions: SessionStore, consents: ConsentStore, codes: CodeStore, interactions: InteractionStore,
                 keyring: KeyRing, settings: OidcSettings, smart: SmartLaunch | None = None,
                 subjects: SubjectMapper | None = None, patients: PatientAccess | None = None,
                 levels: LevelPolicy | None = None) -> None:
        self.issuer = issuer
        self.clients = clients
        self.users = users
        self.user_service = user_service
        self.sessions = sessions
        self.consents = consents
        self.consent = ConsentService(consents)
        self.codes = codes
        self.interactions = interactions
        self.keyring = keyring
        self.settings = settings
        self.smart = smart
        self.subjects = subjects
        self.patients = patients
        self.levels = levels or LevelPolicy({})
        self.auth = UserAuthentication(clients, users, sessions, self.levels, settings.session_lifetime)
        self.session = self.auth.session  # the live session and its user for a cookie value

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
        if aud is not None and aud.rstrip("/") not in smart.audiences:
            raise InvalidRequest(f"aud {aud!r} is not a FHIR server of this authorization server")
        if "launch" in req.scope and launch is None:
            raise InvalidRequest("the launch scope needs a launch parameter (EHR launch)")
        if launch is None:
            return replace(req, context={})
        if "launch" not in req.scope:
            raise InvalidScope("a launch parameter needs the launch scope")
        context = await smart.resolve(launch, req.client_id)
        return replace(req, context=context.to_dict())

    async def decide(self, req: AuthorizationRequest, current: tuple[Session, User] | None,
                     interaction: Interaction | None = None) -> AuthorizationResponse | NeedInteraction:
        """The next step; raises RedirectError (login_required, consent_required) or PageError."""
        client = await self.clients.get(req.client_id)
        if client is None:
            raise PageError("invalid_client", "this application is no longer registered")
        self._check_acr(req)
        step, state = await self.next_step(req, client, current, interaction)
        if step is not None:
            return NeedInteraction(step, state.req)
        req = state.req
        assert current is not None
        session, user = current
        if interaction is not None and await self.interactions.take(interaction.id, int(time.time())) is None:
            # Single-use, checked then consumed by one DELETE ... RETURNING: a double submit gets no second code.
            raise PageError("invalid_request", "This sign-in was already completed or has expired. "
                                               "Go back to the application and start again.")
        launch = req.extra.get("launch")
        if launch is not None and self.smart is not None:  # SMART: a launch value is single-use, spent here
            try:
                await self.smart.consume(launch, req.client_id)
            except OAuthError as exc:
                raise RedirectError(exc, req.target) from None
        fresh = interaction.authenticated_in(session.sid) if interaction is not None else None
        claims = await self.consent.claims_for_grant(req, client, user, interaction)
        code = await self.issue_code(req, client, user, session, fresh, claims)
        return AuthorizationResponse(req.target, response_params(req.target, self.issuer, {"code": code}))

    def _check_acr(self, req: AuthorizationRequest) -> None:
        """OIDC Core §5.5.1.1: an essential `acr` naming no level of this server cannot be met: a failed
        authentication (`unmet_authentication_requirements`), answered before any page is shown."""
        if self.levels.unmeetable(req):
            raise self.auth.unmet(req, "the essential acr asked for names no level of this server")

    async def pending(self, interaction: Interaction, current: tuple[Session, User] | None) -> Step | None:
        """The step the interaction waits for (None: none, the next call gives an answer)."""
        client = None if interaction.local else await self.clients.get(interaction.request.client_id)
        if client is None and not interaction.local:
            return None
        try:
            step, _ = await self.next_step(interaction.request, client, current, interaction)
        except (RedirectError, PageError):
            return None
        return step

    async def next_step(self, req: AuthorizationRequest, client: Client | None, current: tuple[Session, User] | None,
                        interaction: Interaction | None) -> tuple[Step | None, State]:
        """The first step of `steps.STEPS` due; raises RedirectError where prompt=none forbids a page."""
        if client is not None:
            req = await self._internal_hint(req, client, current, interaction)
        authentication = await self.auth.due(req, client, current, interaction)
        return await first_due(self, State(req, client, current, interaction, authentication))

    async def _internal_hint(self, req: AuthorizationRequest, client: Client, current: tuple[Session, User] | None,
                             interaction: Interaction | None) -> AuthorizationRequest:
        """`req` with id_token_hint's pairwise `sub` (OIDC Core §8.1) as the internal id it names, if any."""
        hint = req.id_token_hint_sub
        if hint is None or self.subjects is None or client.extra.get("subject_type") != "pairwise":
            return req
        fresh = interaction.authenticated_in(current[0].sid) if interaction and current else None
        for user_id in {current[0].user_id if current else None, fresh.user_id if fresh else None} - {None}:
            if user_id is not None and await self.subjects.subject(client, user_id) == hint:
                return replace(req, id_token_hint_sub=user_id)
        return replace(req, id_token_hint_sub="pairwise:" + hint)  # names nobody signed in here

    async def issue_code(self, req: AuthorizationRequest, client: Client, user: User, session: Session,
                         fresh: Authentication | None = None, claims_consented: tuple[str, ...] = ()) -> str:
        now = int(time.time())
        # auth_time, amr and acr: those of the credentials verified in this interaction, if any.
        auth = fresh or Authentication(user.id, session.auth_time, session.amr, session.sid,
                                       session.acr or PASSWORD)
        facts = GrantFacts(
            user_id=user.id, scope=req.scope, grant_id=new_token(16), auth_time=auth.time,
            expires_at=now + self.settings.refresh_token_lifetime, sid=session.sid,
            acr=self.levels.stated(req, auth.acr),
            amr=auth.amr, claims=dict(req.claims), claims_consented=claims_consented,
            context=self._token_context(req),
            audience=(req.extra["aud"].rstrip("/"),) if self.smart and "aud" in req.extra else (),
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

    async def start_interaction(self, req: AuthorizationRequest, return_to: str | None = None) -> Interaction:
        interaction = Interaction(id=new_token(24), request=req, return_to=return_to)
        await self.interactions.save(interaction.id, interaction.to_dict(),
                                     int(time.time()) + self.settings.interaction_lifetime)
        return interaction

    async def interaction(self, interaction_id: str) -> Interaction | None:
        if not is_token(interaction_id):  # nor any other kind of value kept beside interactions (launch:...)
            return None
        data = await self.interactions.get(interaction_id, int(time.time()))
        return Interaction.from_dict(interaction_id, data) if data else None

    async def save(self, interaction: Interaction) -> None:
        await self.interactions.update(interaction.id, interaction.to_dict())

    async def give_consent(self, interaction: Interaction, user: User, approve: bool,
                           claims: Iterable[str] = ()) -> Interaction | AuthorizationResponse | PageError:
        """The consent page's answer: the interaction with it, or (denied) the error for the client."""
        try:
            given = await self.consent.answer(interaction, user, approve, claims)
        except RedirectError as err:
            return await self.refuse(err, user, replace(interaction, interacted=True))
        await self.save(given)
        return given

    async def cancel(self, interaction: Interaction) -> AuthorizationResponse | PageError:
        """The user cancelled on one of our pages: access_denied for the client."""
        err = RedirectError(AccessDenied("the user cancelled the sign-in"), interaction.request.target)
        return await self.refuse(err, None, replace(interaction, interacted=True))

    async def refuse(self, err: RedirectError, user: User | None, interaction: Interaction | None,
                     client_id: str | None = None) -> AuthorizationResponse | PageError:
        """Where an authorization error goes: the client's redirect URI, or (RFC 9700 §4.11.2, a client no
        administrator created, before the user interacted and without their earlier consent) a page."""
        client_id = client_id or (interaction.request.client_id if interaction else None)
        client = await self.clients.get(client_id) if client_id else None
        interacted = interaction is not None and interaction.interacted
        if client is not None and await self.consent.may_redirect_error(client, user.id if user else None, interacted):
            return AuthorizationResponse(err.target, response_params(err.target, self.issuer, err.error.as_dict()))
        audit("error_not_redirected", client_id=client_id, error=err.error.error,
              reason="untrusted client, no interaction and no consent of this user")
        return PageError(err.error.error, f"{err.error.description or err.error.error}. You were not sent back to "
                                          f"the application: it registered itself and you have not used it before.")

    async def choose_account(self, interaction: Interaction, keep: bool) -> Interaction:
        """The account chooser's answer: continue with the session's account, or sign in as another."""
        chosen = replace(interaction, account_chosen=keep, switching=not keep, interacted=True)
        await self.save(chosen)
        return chosen

