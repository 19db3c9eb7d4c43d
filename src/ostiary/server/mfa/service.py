"""Enrolment, use and removal of a user's authenticator app (TOTP) and recovery codes.

Guesses are throttled per user with the login throttle's counters and a stricter rule (`guessing_rule`;
one key per user for both kinds of code, so alternating them gains nothing); a success clears the key. Every decision is
audited (docs/sign-in.md, "Audit events"); codes and secrets never are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from ...store.identity import LoginThrottle, SessionStore, ThrottleRule
from ...store.mfa import MfaStore
from ..audit import audit
from ..factors import FactorClass, FactorThrottled, Proof
from . import recovery, totp

__all__ = ["RECOVERY_PROOF", "TOTP_PROOF", "MfaService", "MfaStatus", "PendingTotp", "guessing_rule"]

# RFC 8176 §2 "otp" for both: a recovery code is a one-time password too (RFC 8176 has no value for
# look-up secrets). Both are "something you have" (NIST SP 800-63B §5.1.2 and §5.1.4), so with a
# password (knowledge) the sign-in is multi-factor.
TOTP_AMR = ("otp",)
RECOVERY_AMR = ("otp",)
TOTP_PROOF: frozenset[FactorClass] = frozenset({"possession"})
RECOVERY_PROOF: frozenset[FactorClass] = frozenset({"possession"})


# Guessing codes (RFC 6238 §5.2, NIST SP 800-63B §5.2.2): a 6-digit code has a million values and three
# are accepted at a time, so the login rule's one guess a minute (0.4 % a day) is too many. After the
# same free attempts, delays grow to 15 minutes (Keycloak's default longest wait) and the count is kept
# until a correct code or a day without guesses: about a hundred guesses a day at most.
GUESS_MAX_DELAY = 900
GUESS_WINDOW = 86_400


def guessing_rule(login: ThrottleRule) -> ThrottleRule:
    """The throttle rule for second-factor codes, from the login rule per user."""
    return ThrottleRule(free=login.free, max_delay=max(login.max_delay, GUESS_MAX_DELAY),
                        window=max(login.window, GUESS_WINDOW))


def _guess_key(user_id: str) -> str:
    """The throttle key counting a user's code guesses: one for both kinds of code."""
    return f"mfa:{user_id}"


@dataclass(frozen=True, slots=True)
class MfaStatus:
    totp: Literal["none", "pending", "active"]
    recovery_codes_left: int
    activated_at: int | None = None


@dataclass(frozen=True, slots=True)
class PendingTotp:
    """What the account page shows to set up an app: the secret (also grouped) and its otpauth URI."""

    secret: str
    grouped: str
    uri: str


class MfaService:
    def __init__(self, store: MfaStore, throttle: LoginThrottle, rule: ThrottleRule, issuer_name: str,
                 sessions: SessionStore) -> None:
        self._store = store
        self._sessions = sessions
        self._throttle = throttle
        self._rule = guessing_rule(rule)
        self._issuer_name = issuer_name  # the otpauth label's issuer: the branding name

    async def status(self, user_id: str) -> MfaStatus:
        secret = await self._store.totp(user_id)
        state: Literal["none", "pending", "active"] = "none" if secret is None else (
            "active" if secret.active else "pending")
        return MfaStatus(state, await self._store.recovery_codes_left(user_id),
                         secret.activated_at if secret is not None else None)

    def _pending(self, secret: str, account: str) -> PendingTotp:
        return PendingTotp(secret, totp.grouped(secret), totp.otpauth_uri(secret, self._issuer_name, account))

    async def begin_totp(self, user_id: str, account: str) -> PendingTotp | None:
        """A new pending secret (replacing a pending one); None while an app is active."""
        secret = totp.new_secret()
        if not await self._store.begin_totp(user_id, secret, int(time.time())):
            return None
        audit("mfa_totp_enrolment_started", sub=user_id)
        return self._pending(secret, account)

    async def pending_totp(self, user_id: str, account: str) -> PendingTotp | None:
        secret = await self._store.totp(user_id)
        if secret is None or secret.active or secret.secret is None:
            return None
        return self._pending(secret.secret, account)

    async def activate_totp(self, user_id: str, code: str, session: str | None = None) -> list[str] | None:
        """Activate the pending secret with a correct code: the new recovery codes (shown once), or None.

        Every other session of the user ends (the one of digest `session`, which set the app up, goes
        on): they hold a password alone, so a phished password's session would otherwise outlive the
        factor set up to lock it out (and could still remove it). Keycloak's "sign out from other
        devices" when an authenticator is configured, on by default."""
        now = time.time()
        pending = await self._store.totp(user_id)
        secret = pending.secret if pending is not None and not pending.active else None
        step = totp.matching_step(secret, code, now) if secret is not None else None
        if secret is None or step is None or not await self._store.activate_totp(user_id, secret, step, int(now)):
            audit("mfa_totp_enrolment_failed", sub=user_id)
            return None
        ended = await self._sessions.delete_for_user(user_id, keep=session)
        audit("mfa_totp_enrolled", sub=user_id, sessions_ended=ended)
        return await self.new_recovery_codes(user_id)

    async def new_recovery_codes(self, user_id: str) -> list[str]:
        """Replace the user's recovery codes with fresh ones (returned once, stored as digests)."""
        codes = recovery.new_codes()
        await self._store.replace_recovery_codes(
            user_id, [recovery.digest(c.replace("-", "")) for c in codes], int(time.time()))
        audit("mfa_recovery_codes_generated", sub=user_id, count=len(codes))
        return codes

    async def remove(self, user_id: str) -> tuple[bool, int]:
        """The user removes their app, and with it the recovery codes: (whether there was an app, how
        many codes there were)."""
        removed = await self._store.remove_totp(user_id)
        codes = await self._store.remove_recovery_codes(user_id)
        audit("mfa_totp_removed", sub=user_id, totp_removed=removed, recovery_codes_removed=codes)
        return removed, codes

    async def reset(self, user_id: str) -> tuple[bool, int, int]:
        """An administrator's reset (`ostiary user mfa reset`): the app and recovery codes go and every
        SSO session of the user ends (they held the factor's level). Returns (app removed, codes
        removed, sessions ended)."""
        removed = await self._store.remove_totp(user_id)
        codes = await self._store.remove_recovery_codes(user_id)
        await self._throttle.reset(_guess_key(user_id))
        ended = await self._sessions.delete_for_user(user_id)
        audit("mfa_reset", sub=user_id, totp_removed=removed, recovery_codes_removed=codes, sessions_ended=ended)
        return removed, codes, ended

    async def has_totp(self, user_id: str) -> bool:
        secret = await self._store.totp(user_id)
        return secret is not None and secret.active

    async def has_recovery_codes(self, user_id: str) -> bool:
        return await self._store.recovery_codes_left(user_id) > 0

    async def _admit(self, user_id: str) -> None:
        """Count one guess; raises FactorThrottled (nothing checked) while the user's guesses must wait."""
        wait = await self._throttle.attempt(_guess_key(user_id), self._rule, int(time.time()))
        if wait:
            audit("mfa_throttled", sub=user_id, retry_after=wait)
            raise FactorThrottled(wait)

    async def verify_totp(self, user_id: str, code: str) -> Proof | None:
        """A proof for a correct code of a time step not used before; None otherwise (audited)."""
        await self._admit(user_id)
        stored = await self._store.totp(user_id)
        if stored is not None and stored.active and stored.secret is None:
            audit("mfa_totp_unreadable", level=logging.ERROR, sub=user_id,
                  reason="no known secret key opens the stored TOTP secret")
        secret = stored.secret if stored is not None and stored.active else None
        step = totp.matching_step(secret, code, time.time()) if secret is not None else None
        if step is None:
            audit("mfa_totp_failed", sub=user_id, reason="wrong code")
            return None
        if not await self._store.use_step(user_id, step):
            audit("mfa_totp_failed", sub=user_id, reason="code already used")
            return None
        await self._throttle.reset(_guess_key(user_id))
        audit("mfa_totp_used", sub=user_id)
        return Proof(user_id=user_id, amr=TOTP_AMR, classes=TOTP_PROOF)

    async def verify_recovery_code(self, user_id: str, code: str) -> Proof | None:
        """A proof for an unused recovery code, which is spent; None otherwise (audited)."""
        await self._admit(user_id)
        normalised = recovery.normalise(code)
        if normalised is None or not await self._store.use_recovery_code(user_id, recovery.digest(normalised)):
            audit("mfa_recovery_code_failed", sub=user_id)
            return None
        await self._throttle.reset(_guess_key(user_id))
        audit("mfa_recovery_code_used", sub=user_id, left=await self._store.recovery_codes_left(user_id))
        return Proof(user_id=user_id, amr=RECOVERY_AMR, classes=RECOVERY_PROOF)
