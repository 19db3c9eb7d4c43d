"""Second factors kept per user: one TOTP secret (RFC 6238) and one-time recovery codes.

The TOTP secret is stored sealed under the secret key (store/sql/sealed.py); implementations seal
and unseal it themselves, so callers only ever see it in the clear. A secret is first *pending*
(shown on the account page, not yet usable) and becomes *active* only after a correct code.
Recovery codes are stored as SHA-256 digests (the codes carry 80 random bits, like the tokens
this server stores by digest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["MfaStore", "TotpSecret"]


@dataclass(frozen=True, slots=True)
class TotpSecret:
    user_id: str
    # base32, as shown to the user (RFC 4648 §6, no padding); None if no known secret key opens it (the
    # factor stays enrolled and refuses every code: fail closed, never a sign-in without it)
    secret: str | None
    active: bool  # False: an enrolment waiting for its first correct code
    created_at: int
    activated_at: int | None = None
    last_step: int | None = None  # the highest RFC 6238 time step accepted so far


class MfaStore(Protocol):
    async def totp(self, user_id: str) -> TotpSecret | None:
        """The user's TOTP secret, active or pending; None without one."""

    async def begin_totp(self, user_id: str, secret: str, now: int) -> bool:
        """Keep a pending secret, replacing a pending one; False (nothing changed) while one is active."""

    async def activate_totp(self, user_id: str, secret: str, step: int, now: int) -> bool:
        """Make the pending `secret` active with `step` used, in one conditional statement: False if
        it is no longer the pending secret (replaced, removed or already activated meanwhile)."""

    async def use_step(self, user_id: str, step: int) -> bool:
        """Record `step` as used, in one conditional statement: True only if the secret is active and
        no step >= `step` was accepted before (RFC 6238 §5.2: a code is accepted once; of two racing
        submissions exactly one wins)."""

    async def remove_totp(self, user_id: str) -> bool:
        """Forget the secret (active or pending); False if there was none."""

    async def replace_recovery_codes(self, user_id: str, digests: list[str], now: int) -> None:
        """The user's recovery codes are now exactly `digests` (earlier ones stop working)."""

    async def use_recovery_code(self, user_id: str, digest: str) -> bool:
        """Consume one code in one conditional statement: True once, False for unknown or used."""

    async def recovery_codes_left(self, user_id: str) -> int: ...

    async def remove_recovery_codes(self, user_id: str) -> int:
        """Forget every recovery code of the user; returns how many there were."""
