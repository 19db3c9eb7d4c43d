"""The steps of a sign-in, in order, each with its check: the first step whose check says "due" is shown.

The model is node-oidc-provider's interaction policy (an ordered list of prompts, each with checks;
the first prompt with a failing check is shown, and `interactionFinished` records the answer), kept
in Ostiary's types: a check reads a frozen `State` and answers whether its step is due, with the
request as the step should see it (consent asks only for what the user may give). As
`client_auth.AUTH_METHODS` chooses a client authentication method, `STEPS` chooses the step.

| step | due when | under prompt=none |
|---|---|---|
| login | no credential fits (no session, prompt=login, max_age, id_token_hint, switching) | login_required |
| second_factor | the proofs fall short of the level needed (requirement.LevelPolicy) | login_required |
| select_account | prompt=select_account, no login in this interaction, no choice made yet | (the page) |
| consent | the client asks for more than the user gave it | consent_required |
| select_patient | a SMART app needs a patient and the user may see several | interaction_required |

The local sign-in (no client) runs the steps marked `local`: login and second_factor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from ...errors import ConsentRequired, LoginRequired, OAuthError, RedirectError
from ...store import Client
from ...store.identity import Session, User
from ..audit import audit
from ..authorize import AuthorizationRequest
from ..consent import ConsentService
from ..interaction import Interaction, Step
from ..patient_access import PatientAccess

__all__ = ["STEPS", "State", "StepRule", "StepServices", "first_due"]


class StepServices(Protocol):
    """What the checks consult (the authorization flow provides them)."""

    @property
    def consent(self) -> ConsentService: ...
    @property
    def patients(self) -> PatientAccess | None: ...


@dataclass(frozen=True, slots=True)
class State:
    """What the checks read: the request (as refined so far), its client, the session, the interaction."""

    req: AuthorizationRequest
    client: Client | None  # None: the local sign-in
    current: tuple[Session, User] | None
    interaction: Interaction | None
    authentication: Step | None  # "login", "second_factor" or None: computed once from the proofs

    @property
    def user(self) -> User:
        assert self.current is not None, "only checked after the authentication steps"
        return self.current[1]

    def fresh_user(self) -> str | None:
        """The user whose credential was verified in this interaction (in its session), if any."""
        if self.interaction is None or self.current is None:
            return None
        auth = self.interaction.authenticated_in(self.current[0].sid)
        return auth.user_id if auth is not None else None


Check = Callable[[StepServices, State], Awaitable[tuple[bool, State]]]


@dataclass(frozen=True, slots=True)
class StepRule:
    name: Step
    check: Check
    under_prompt_none: Callable[[], OAuthError] | None  # the error sent instead of the page
    local: bool = False  # also a step of the local sign-in


async def _login(_: StepServices, s: State) -> tuple[bool, State]:
    return s.authentication == "login", s


async def _second_factor(_: StepServices, s: State) -> tuple[bool, State]:
    return s.authentication == "second_factor", s


async def _select_account(_: StepServices, s: State) -> tuple[bool, State]:
    fresh = s.fresh_user()
    if fresh is not None and s.req.id_token_hint_sub is not None and fresh != s.req.id_token_hint_sub:
        # OIDC Core §3.1.2.1: the user who signed in is not the one the client named.
        audit("reauthentication_refused", sub=fresh, client_id=s.req.client_id,
              reason="the user who signed in is not the subject of id_token_hint")
        raise RedirectError(LoginRequired("the user who signed in is not the one of id_token_hint"), s.req.target)
    i = s.interaction
    chosen = i is not None and (i.account_chosen or i.consent is not None)
    return "select_account" in s.req.prompt and fresh is None and not chosen, s


async def _consent(services: StepServices, s: State) -> tuple[bool, State]:
    client = s.client
    assert client is not None
    if services.patients is not None:  # consent is asked for what this user may give, no more
        s = replace(s, req=await services.patients.reduce(s.req, client, s.user))
    consented = s.interaction is not None and s.interaction.consent is not None
    return not consented and await services.consent.needed(s.req, client, s.user), s


async def _select_patient(services: StepServices, s: State) -> tuple[bool, State]:
    """SMART: scopes within the user's patients, and the patient in context (raises RedirectError for a
    launch patient the user may not see, interaction_required under prompt=none)."""
    if services.patients is None or s.client is None:
        return False, s
    req, pick = await services.patients.settle(s.req, s.client, s.user)
    return pick, replace(s, req=req)


STEPS: tuple[StepRule, ...] = (
    StepRule("login", _login, lambda: LoginRequired("the user is not logged in"), local=True),
    StepRule("second_factor", _second_factor, lambda: LoginRequired("the sign-in needs a second factor"),
             local=True),
    StepRule("select_account", _select_account, None),
    StepRule("consent", _consent, lambda: ConsentRequired("the user has not consented")),
    StepRule("select_patient", _select_patient, None),
)


async def first_due(services: StepServices, state: State) -> tuple[Step | None, State]:
    """The first step due and the state as it saw it; raises RedirectError where prompt=none forbids a page."""
    for rule in STEPS:
        if state.client is None and not rule.local:
            continue
        due, state = await rule.check(services, state)
        if due:
            if rule.under_prompt_none is not None and "none" in state.req.prompt:
                raise RedirectError(rule.under_prompt_none(), state.req.target)
            return rule.name, state
    return None, state
