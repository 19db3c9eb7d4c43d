"""Authentication levels (`acr`): which are met by the proofs of a sign-in, and what is still missing.

Four levels, each stricter than the one before (a ladder, so "at least this level" is well defined):

| acr value                   | met by                                                                 |
|-----------------------------|------------------------------------------------------------------------|
| `urn:ostiary:acr:password`  | any verified credential (password, passkey, upstream provider)         |
| `urn:ostiary:acr:mfa`       | two factor classes (RFC 8176 `mfa`): password + TOTP, a verified passkey |
| `phr`                       | multi-factor with a phishing-resistant credential (OpenID EAP ACR Values 1.0) |
| `phrh`                      | as `phr`, the phishing-resistant credential bound to hardware           |

EAP's `phr` does not itself demand two factors; Ostiary reads it as "at least multi-factor" so the
levels form a ladder and asking for `phr` never yields less than asking for `mfa`. Unknown values in
`acr_values` are ignored (they are voluntary, OIDC Core §3.1.2.1); an essential `acr` (§5.5.1.1) the
sign-in cannot meet fails the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from ..factors import Proof

__all__ = ["LEVELS", "MFA", "PASSWORD", "PHR", "PHRH", "Missing", "achieved", "is_met", "missing", "strictest"]

PASSWORD = "urn:ostiary:acr:password"
MFA = "urn:ostiary:acr:mfa"
PHR = "phr"
PHRH = "phrh"
LEVELS: tuple[str, ...] = (PASSWORD, MFA, PHR, PHRH)  # weakest first

# What a sign-in still needs for a level: a first credential, a second factor of any kind, or a
# (hardware-bound) passkey.
Missing = Literal["login", "second_factor", "phishing_resistant", "hardware_bound"]


def _classes(proofs: Sequence[Proof]) -> set[str]:
    # An upstream sign-in is one factor of its own ("federated"): alone never multi-factor, with a local
    # second factor (or upstream factors the administrator trusts it for) two (docs/sign-in.md, federation).
    return {str(c) for p in proofs for c in p.classes}


def is_met(level: str, proofs: Sequence[Proof]) -> bool:
    """Whether `proofs` meet `level` (an unknown level is never met)."""
    return level in LEVELS and missing(level, proofs) is None


def missing(level: str, proofs: Sequence[Proof]) -> Missing | None:
    """What `proofs` lack for `level`; None when it is met. Unknown levels need what `PASSWORD` needs."""
    if not proofs:
        return "login"
    rank = LEVELS.index(level) if level in LEVELS else 0
    # An upstream provider's own acr (only from one the administrator trusts for acr) meets its level.
    if any(p.acr in LEVELS and LEVELS.index(p.acr) >= rank for p in proofs):
        return None
    if rank >= LEVELS.index(MFA) and len(_classes(proofs)) < 2:
        return "second_factor"
    if rank >= LEVELS.index(PHR) and not any(p.phishing_resistant for p in proofs):
        return "phishing_resistant"
    if rank >= LEVELS.index(PHRH) and not any(p.phishing_resistant and p.hardware_bound for p in proofs):
        return "hardware_bound"
    return None


def achieved(proofs: Sequence[Proof]) -> str | None:
    """The strictest level `proofs` meet (the `acr` to state), None without any proof."""
    met = [level for level in LEVELS if missing(level, proofs) is None]
    return met[-1] if met else None


def strictest(levels: Iterable[str | None]) -> str | None:
    """The strictest known level among `levels` (the one a sign-in must meet); None if none is known."""
    known = [LEVELS.index(level) for level in levels if level in LEVELS]
    return LEVELS[max(known)] if known else None
