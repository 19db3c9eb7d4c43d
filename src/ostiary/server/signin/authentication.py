"""Who is signing in, and how well: the proofs of a sign-in, the session they make, what is still due.

Every verified credential is a `Proof` (server.factors). The proofs of one user accumulate in the
interaction; the session counts as one proof of what it recorded unless the request asks for a fresh
credential. Once the proofs meet the level needed (`requirement.LevelPolicy`), a session is made or
upgraded, always with a new cookie value (no session fixation).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from ...errors import RedirectError, UnmetAuthenticationRequirements
from ...store import Client
from ...store.identity import Session, SessionStore, User, UserStore
from ..audit import audit
from ..authorize import AuthorizationRequest
from ..client_auth import ClientLookup
from ..credentials import digest, new_token
from ..factors import Proof, combined_amr
from ..interaction import Authentication, Interaction, Step
from ..policy.levels import achieved
from .requirement import LevelPolicy, session_proof

__all__ = ["UserAuthentication"]


class UserAuthentication:
    def __init__(self, clients: ClientLookup, users: UserStore, sessions: SessionStore, levels: LevelPolicy,
                 session_lifetime: int) -> None:
        self.clients = clients
        self.users = users
        self.sessions = sessions
        self.levels = levels
        self.session_lifetime = session_lifetime

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

    @staticmethod
    def unmet(req: AuthorizationRequest, reason: str) -> RedirectError:
        audit("authentication_failed", client_id=req.client_id or None, reason=reason)
        return RedirectError(UnmetAuthenticationRequirements(reason), req.target)

    def proofs(self, req: AuthorizationRequest, current: tuple[Session, User] | None,
               interaction: Interaction | None) -> tuple[tuple[Proof, ...], bool]:
        """What this sign-in has proven so far, and whether a session of this interaction holds it.

        OIDC Core §3.1.2.1: prompt=login, max_age and id_token_hint are met only by credentials verified
        in this interaction (bound to the session it made, its sid), never by a step or a form field;
        otherwise the session counts as one proof of what it recorded (amr, acr).
        """
        session = current[0] if current is not None else None
        if interaction is not None:
            if session is not None and interaction.authenticated_in(session.sid) is not None:
                return interaction.proofs, True
            if interaction.proofs and interaction.authenticated is None:
                return interaction.proofs, False  # a sign-in under way: a second factor is still due
        if session is None or self._must_reauthenticate(req, session, interaction):
            return (), False
        return (session_proof(session.user_id, session.amr, session.acr, session.auth_time),), True

    async def outdated(self, proofs: Sequence[Proof]) -> bool:
        """Whether the proofs of a sign-in under way hold a password checked before the user's account
        last changed (a password reset or set, a disable): a reset must also stop whoever entered the old
        password and now waits at the second factor, so the password is asked for again."""
        if not proofs:
            return False
        user = await self.users.get(proofs[0].user_id)
        stale = user is None or any("pwd" in p.amr and p.time is not None and p.time < user.updated_at
                                    for p in proofs)
        if stale:
            audit("signin_proofs_outdated", sub=proofs[0].user_id,
                  reason="the account changed after its password was checked in this sign-in")
        return stale

    def _must_reauthenticate(self, req: AuthorizationRequest, session: Session,
                             interaction: Interaction | None) -> bool:
        if interaction is not None and interaction.switching:
            return True
        now = int(time.time())
        return (
            "login" in req.prompt
            # OIDC Core §3.1.2.1 (errata 2): max_age=0 is equivalent to prompt=login.
            or (req.max_age is not None and (req.max_age == 0 or now - session.auth_time > req.max_age))
            or (req.id_token_hint_sub is not None and req.id_token_hint_sub != session.user_id)
        )

    async def due(self, req: AuthorizationRequest, client: Client | None, current: tuple[Session, User] | None,
                  interaction: Interaction | None) -> Step | None:
        """"login", "second_factor" or None (authenticated at the level needed); raises RedirectError
        (unmet_authentication_requirements) when the level needed is beyond this user's factors."""
        proofs, in_session = self.proofs(req, current, interaction)
        if not proofs or (not in_session and await self.outdated(proofs)):
            return "login"
        need = await self.levels.need(req, client, proofs[0].user_id)
        gap = need.gap(proofs)
        if gap is None:
            return None if in_session else "login"  # met but no session holds it (signed out since)
        if need.reachable(gap, proofs):
            return "second_factor"
        raise self.unmet(req, f"the sign-in needs {need.floor}, beyond this user's enrolled factors")

    async def log_in(self, user: User, previous_cookie: str | None,
                     proofs: Sequence[Proof]) -> tuple[str, Session]:
        """A new session for `user` (always a new cookie value: no session fixation) recording what
        `proofs` prove; ends the previous one (whose applications it keeps when it was the same user's)."""
        previous = await self.sessions.delete(digest(previous_cookie)) if previous_cookie else None
        now = int(time.time())
        cookie = new_token(32)
        session = Session(digest=digest(cookie), sid=new_token(16), user_id=user.id,
                          auth_time=max(p.time if p.time is not None else now for p in proofs),
                          expires_at=now + self.session_lifetime, amr=combined_amr(proofs),
                          acr=achieved(proofs))
        await self.sessions.create(session)
        if previous is not None and previous.user_id == user.id:
            for client_id in previous.clients:  # logout still reaches the applications of the upgraded session
                await self.sessions.add_client(session.digest, client_id)
        return cookie, session

    async def prove(self, interaction: Interaction, proof: Proof,
                    previous_cookie: str | None) -> tuple[str | None, Interaction]:
        """A credential of `proof.user_id` was verified in this interaction. Proofs of one user accumulate
        (the session's own counts when it may: a step-up adds only the missing factor); once they meet the
        level needed, a session is made or upgraded (a new cookie value) and recorded as this
        interaction's. Until then nobody is signed in: a password alone does not pass a second factor."""
        current = await self.session(previous_cookie)
        had, in_session = self.proofs(interaction.request, current, interaction)
        if not in_session and await self.outdated(had):
            had = ()  # the password changed since it was checked here: it proves nothing now
        kept = tuple(p for p in had if p.user_id == proof.user_id)
        # The same kind of proof twice adds nothing (and a stored interaction cannot grow without end).
        proofs = kept if any(replace(p, time=None) == replace(proof, time=None) for p in kept) else (*kept, proof)
        updated = replace(interaction, proofs=proofs, authenticated=None, switching=False, interacted=True)
        user = await self.users.get(proof.user_id)
        client = None if interaction.local else await self.clients.get(interaction.request.client_id)
        cookie = None
        if user is not None and not user.disabled and (
                await self.levels.need(interaction.request, client, user.id)).gap(proofs) is None:
            cookie, session = await self.log_in(user, previous_cookie, proofs)
            updated = replace(updated, authenticated=Authentication(
                user_id=user.id, time=session.auth_time, amr=session.amr, sid=session.sid, acr=session.acr))
        return cookie, updated  # the caller saves it
