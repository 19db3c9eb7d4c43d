"""The sign-in service (`provider.signin`): the front channel as one typed state machine.

Each web route parses its form, checks CSRF, makes ONE call here and renders the `Outcome`. The steps
of a sign-in, their order and their checks are in `steps.STEPS`; every verified credential ends in
`prove`, which accumulates `Proof`s of one user and makes or upgrades the session once they meet the
level needed (`requirement.LevelPolicy`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace

from ...errors import PageError, RedirectError
from ...store.identity import Session, User
from ..audit import audit
from ..authorize import AuthorizationRequest
from ..factors import FactorThrottled, Proof, SecondFactor
from ..flow import AuthorizationFlow, AuthorizationResponse
from ..interaction import Interaction, Step
from .local import safe_return_to
from .outcomes import ErrorPage, FactorChoice, Finish, Outcome, Redirect, ShowStep

__all__ = ["PASSWORD_PROOF", "InteractionService"]

Current = tuple[Session, User] | None
MAX_ACR_VALUES = 512


def PASSWORD_PROOF(user_id: str) -> Proof:
    # its time: a password changed since (a reset) voids it in a sign-in under way (flow.outdated)
    return Proof(user_id, ("pwd",), frozenset({"knowledge"}), time=int(time.time()))


def _local_request(target: str, prompt: str | None, acr_values: str | None) -> AuthorizationRequest:
    """The request of a local sign-in (no client) back to `target`."""
    return AuthorizationRequest(
        client_id="", redirect_uri=target, redirect_uri_given=False, response_mode="query", scope=(),
        prompt=("login",) if prompt == "login" else (), acr_values=(acr_values or "")[:MAX_ACR_VALUES] or None)


def _duration(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{seconds} seconds" if seconds < 120 else f"{minutes} minutes"


def _expired() -> ErrorPage:
    return ErrorPage(PageError("invalid_request", "This sign-in was already completed or has expired. "
                                                  "Go back to the application and start again."))


class InteractionService:
    def __init__(self, flow: AuthorizationFlow, factors: Mapping[str, SecondFactor]) -> None:
        self.flow = flow
        self.factors = factors

    # -- entry points -------------------------------------------------------------------------------

    async def begin(self, params: Mapping[str, str], repeated: Iterable[str], cookie: str | None) -> Outcome:
        """An authorization request (OIDC Core §3.1.2.1): a code at once, an error, or a new interaction."""
        try:
            req = await self.flow.validate(params, repeated)
        except PageError as err:
            return ErrorPage(err)
        except RedirectError as err:
            current = await self.flow.session(cookie)
            return Finish(await self.flow.refuse(err, current[1] if current else None, None,
                                                 params.get("client_id")))
        return await self._client_step(req, await self.flow.session(cookie), None)

    async def begin_local(self, return_to: str | None, prompt: str | None, acr_values: str | None,
                          cookie: str | None) -> Outcome:
        """A sign-in on this server's own pages (account, launcher, portal): no client, back to `return_to`."""
        target = safe_return_to(return_to)
        if target is None:
            audit("local_signin_refused", reason="return_to is not a local path", return_to=(return_to or "")[:64])
            return ErrorPage(PageError("invalid_request", "return_to must be a path on this server."))
        req = _local_request(target, prompt, acr_values)
        try:
            step, _ = await self.flow.next_step(req, None, await self.flow.session(cookie), None)
        except RedirectError as err:  # a level this user's factors cannot reach
            return ErrorPage(PageError(err.error.error, err.error.description or err.error.error))
        if step is None:
            return Redirect(target)
        return await self._start(Interaction(id="", request=req, return_to=target))

    async def signed_in(self, page: str, cookie: str | None) -> Current:
        """The session and user for one of this server's own pages (`page`, its path), if the session
        meets what the local sign-in to that page needs (the user's factors, `required_acr` outside the
        account page); else None, and the page sends the person through `/signin?return_to=page`."""
        current = await self.flow.session(cookie)
        if current is None:
            return None
        try:
            step, _ = await self.flow.next_step(_local_request(page, None, None), None, current, None)
        except RedirectError:
            return None
        return current if step is None else None

    async def load(self, interaction_id: str) -> Interaction | None:
        return await self.flow.interaction(interaction_id)

    async def resume(self, interaction: Interaction, cookie: str | None) -> Outcome:
        """The interaction's page: its next step, or its end."""
        current = await self.flow.session(cookie)
        if interaction.local:
            return await self._local_step(interaction, current)
        return await self._client_step(interaction.request, current, interaction)

    async def due(self, interaction: Interaction, cookie: str | None) -> Step | None:
        """The step the interaction waits for (None: the next call gives an answer)."""
        return await self.flow.pending(interaction, await self.flow.session(cookie))

    # -- credentials -----------------------------------------------------------------------------------

    async def password(self, interaction: Interaction, username: str, password: str, address: str,
                       cookie: str | None) -> Outcome:
        """The login form: a username and password, throttled (server.users)."""
        result = await self.flow.user_service.login(username, password, address) if username and password else None
        if result is None or result.user is None:
            if result is not None and result.retry_after:
                return ShowStep("login", interaction, username=username, status=429, retry_after=result.retry_after,
                                error=f"Too many sign-in attempts. Try again in {result.retry_after} seconds.")
            return ShowStep("login", interaction, username=username, status=400,
                            error="Enter your username and password." if result is None
                            else "Wrong username or password.")
        return await self.prove(interaction, PASSWORD_PROOF(result.user.id), cookie)

    async def second_factor(self, interaction: Interaction, form: Mapping[str, str], cookie: str | None) -> Outcome:
        """The second-factor page: only when it is due, only a factor the signing-in user has enrolled."""
        current = await self.flow.session(cookie)
        if await self.flow.pending(interaction, current) != "second_factor":
            return Redirect(self.page(interaction))
        proofs, _ = self.flow.auth.proofs(interaction.request, current, interaction)
        user_id = proofs[0].user_id
        factor = self.factors.get(form.get("factor", ""))
        if factor is None or not await factor.enrolled(user_id):
            return await self._show("second_factor", interaction, current, status=400,
                                    error="Choose one of your second factors.")
        try:
            proof = await factor.verify(user_id, interaction.id, form)
        except FactorThrottled as wait:
            shown = await self._show("second_factor", interaction, current, status=429,
                                     error=f"Too many codes were tried for this account. Try again in "
                                           f"{_duration(wait.retry_after)}.")
            return replace(shown, retry_after=wait.retry_after)
        if proof is None or proof.user_id != user_id:
            return await self._show("second_factor", interaction, current, status=400,
                                    error="That was not accepted. Try again or use another factor.")
        return await self.prove(interaction, proof, cookie)

    async def prove(self, interaction: Interaction, proof: Proof, previous_session_cookie: str | None) -> Outcome:
        """A credential of `proof.user_id` was verified (password, second factor, passkey, upstream provider):
        record it, make or upgrade the session when the level is met, and go on with the interaction."""
        stored = await self.flow.interaction(interaction.id)  # the stored state, never a stale copy
        if stored is None:
            return _expired()
        cookie, proved = await self.flow.auth.prove(stored, proof, previous_session_cookie)
        await self.flow.save(proved)
        return Redirect(self.page(interaction), cookie=cookie)

    # -- other steps ---------------------------------------------------------------------------------

    async def choose_account(self, interaction: Interaction, keep: bool, cookie: str | None) -> Outcome:
        if await self.due(interaction, cookie) == "select_account":
            await self.flow.choose_account(interaction, keep)
        return Redirect(self.page(interaction))

    async def consent(self, interaction: Interaction, approve: bool, claims: Iterable[str],
                      cookie: str | None) -> Outcome:
        current = await self.flow.session(cookie)
        if current is None or await self.flow.pending(interaction, current) != "consent":
            return Redirect(self.page(interaction))  # signed out in another tab since: show what is due now
        answered = await self.flow.give_consent(interaction, current[1], approve, claims)
        if isinstance(answered, Interaction):
            return Redirect(self.page(interaction))
        return Finish(answered, interaction)

    async def pick_patient(self, interaction: Interaction, patient_id: str, cookie: str | None) -> Outcome:
        """The picker's answer: only when this interaction is at the picker, only a patient the user may
        see, never over a patient already fixed (an EHR launch's: the picker is then never due)."""
        req = interaction.request
        current = await self.flow.session(cookie)
        patients = self.flow.patients
        if current is None or patients is None or await self.flow.pending(interaction, current) != "select_patient":
            audit("patient_pick_refused", client_id=req.client_id, reason="not asked", patient=patient_id[:64])
            return ErrorPage(PageError("invalid_request", "No patient choice was asked for in this sign-in."))
        if not patient_id or not await patients.may_pick(current[1].id, patient_id):
            audit("patient_pick_refused", sub=current[1].id, client_id=req.client_id, patient=patient_id[:64])
            return ErrorPage(PageError("invalid_request", "Choose a patient from the list."))
        await self.flow.save(interaction.with_request(replace(req, context={**req.context, "patient": patient_id})))
        return Redirect(self.page(interaction))

    async def abort(self, interaction: Interaction) -> Outcome:
        if interaction.local:
            await self.flow.interactions.delete(interaction.id)
            return Redirect("/", ends=interaction)
        return Finish(await self.flow.cancel(interaction), interaction)

    # -- internals ---------------------------------------------------------------------------------

    @staticmethod
    def page(interaction: Interaction) -> str:
        return f"/interaction/{interaction.id}"

    async def _start(self, interaction: Interaction) -> Outcome:
        started = await self.flow.start_interaction(interaction.request, return_to=interaction.return_to)
        return Redirect(self.page(started), starts=started)

    async def _client_step(self, req: AuthorizationRequest, current: Current,
                           interaction: Interaction | None) -> Outcome:
        try:
            outcome = await self.flow.decide(req, current, interaction)
        except PageError as err:
            return ErrorPage(err)
        except RedirectError as err:
            return Finish(await self.flow.refuse(err, current[1] if current else None, interaction, req.client_id),
                          interaction)
        if isinstance(outcome, AuthorizationResponse):
            return Finish(outcome, interaction)
        if interaction is None:
            return await self._start(Interaction(id="", request=outcome.request))
        return await self._show(outcome.step, interaction.with_request(outcome.request), current)

    async def _local_step(self, interaction: Interaction, current: Current) -> Outcome:
        try:
            step, _ = await self.flow.next_step(interaction.request, None, current, interaction)
        except RedirectError as err:
            await self.flow.interactions.delete(interaction.id)
            return ErrorPage(PageError(err.error.error, err.error.description or err.error.error))
        if step is not None:
            return await self._show(step, interaction, current)
        if await self.flow.interactions.take(interaction.id, int(time.time())) is None:
            return _expired()
        assert interaction.return_to is not None
        return Redirect(interaction.return_to, ends=interaction)

    async def _show(self, step: Step, interaction: Interaction, current: Current, *, error: str | None = None,
                    status: int = 200) -> ShowStep:
        if step == "login":
            return ShowStep("login", interaction, error=error, status=status,
                            username=interaction.request.login_hint)
        if step != "second_factor":
            return ShowStep(step, interaction, current[1] if current else None, error=error, status=status)
        proofs, _ = self.flow.auth.proofs(interaction.request, current, interaction)
        user = await self.flow.users.get(proofs[0].user_id)
        choices = [FactorChoice(name, await factor.challenge(proofs[0].user_id, interaction.id))
                   for name, factor in self.factors.items() if await factor.enrolled(proofs[0].user_id)]
        return ShowStep("second_factor", interaction, user, tuple(choices), error=error, status=status)
