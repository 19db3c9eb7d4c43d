"""Credentials a sign-in verifies, and the second factors a user can enrol: one protocol, one table.

Every way of proving who you are (password, TOTP code, recovery code, passkey, an upstream identity
provider) ends in a `Proof`: who, which RFC 8176 `amr` values it contributes, which factor classes it
covers, whether it resists phishing and is bound to hardware. The interaction service accumulates the
proofs of one sign-in; `policy.levels` decides from them which `acr` levels are met and what is still
missing. A second factor is chosen from `provider.factors` by name, the way `client_auth.AUTH_METHODS`
chooses a client authentication method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["FactorClass", "FactorThrottled", "Proof", "SecondFactor", "combined_amr"]

# NIST SP 800-63B: something you know, have, are. A federated sign-in is its own class: what the
# upstream provider checked is not known here unless the administrator trusts its `amr`, but it is one
# factor, verified by another system; with a local second factor the sign-in is multi-factor.
FactorClass = Literal["knowledge", "possession", "inherence", "federated"]


@dataclass(frozen=True, slots=True)
class Proof:
    """A credential of `user_id` verified just now."""

    user_id: str
    amr: tuple[str, ...]  # RFC 8176 values: ("pwd",), ("otp",), ("hwk",), ("swk", "mfa"), ("fed",) ...
    classes: frozenset[FactorClass]  # a passkey with user verification covers two
    phishing_resistant: bool = False  # WebAuthn: the origin is bound into the signature
    hardware_bound: bool = False  # the key cannot leave the authenticator (not backup-eligible)
    time: int | None = None  # when it was verified, if not now (an upstream provider's auth_time)
    acr: str | None = None  # an upstream provider's acr, only from one the administrator trusts for it


class FactorThrottled(Exception):
    """Raised by `SecondFactor.verify` when the answer was not checked: too many recent attempts for this
    user. The page says to wait `retry_after` seconds (429), not that the answer was wrong."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def combined_amr(proofs: Iterable[Proof]) -> tuple[str, ...]:
    """RFC 8176 `amr` of several proofs: each value once, in order, and `mfa` when two factor
    classes were used (RFC 8176 §2: "mfa" = multiple-factor authentication)."""
    values: list[str] = []
    classes: set[FactorClass] = set()
    for proof in proofs:
        classes |= proof.classes
        values.extend(v for v in proof.amr if v not in values)
    if len(classes) >= 2 and "mfa" not in values:
        values.append("mfa")
    return tuple(values)


class SecondFactor(Protocol):
    """One kind of second factor (TOTP, recovery code, passkey), registered in `provider.factors` by `name`."""

    name: str  # "totp", "recovery_code", "passkey": the step's form field `factor` names it
    phishing_resistant: bool

    async def enrolled(self, user_id: str) -> bool:
        """Whether the user can use this factor now (has a TOTP secret, recovery codes left, a passkey)."""
        ...

    async def challenge(self, user_id: str, interaction_id: str) -> Mapping[str, Any]:
        """What its form on the second-factor page needs (a WebAuthn challenge it keeps itself); may be empty."""
        ...

    async def verify(self, user_id: str, interaction_id: str, form: Mapping[str, str]) -> Proof | None:
        """The proof, or None for a wrong or reused answer; raises FactorThrottled for one not checked
        (the factor audits and throttles)."""
        ...
