"""Which authentication level (`acr`) a sign-in needs, and whether this user can reach it.

The level needed is the strictest of (docs/sign-in.md "Authentication levels"):

- the server's `[signin] required_acr` (sign-ins for applications, the EHR launcher and the developer
  portal; the local sign-in to the account page is exempt, so a user can always reach the page where
  second factors are enrolled);
- the client's admin-only `minimum_acr` metadata;
- an essential `acr` claim (OIDC Core §5.5.1.1): the weakest of its known values, and the `acr` stated
  is one of them; when none can be met the sign-in fails with `unmet_authentication_requirements`;
- the user's own policy: whoever has enrolled a second factor uses one at every sign-in (multi-factor);
- `acr_values` (OIDC Core §3.1.2.1, voluntary): the first known value the user can reach; when the user
  cannot reach any, the sign-in goes on and the level achieved is stated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...store import Client
from ..authorize import AuthorizationRequest
from ..factors import Proof, SecondFactor
from ..policy.levels import LEVELS, MFA, PASSWORD, PHR, PHRH, Missing, missing, strictest
from .local import exempt_from_required_acr

__all__ = ["CLIENT_LEVEL_FIELD", "LevelPolicy", "Need", "essential_acr", "session_proof"]

CLIENT_LEVEL_FIELD = "minimum_acr"  # admin-only client metadata (server.policy.clients.ADMIN_ONLY)

# RFC 8176 values of a session's amr read back as factor classes (a session made before levels existed
# has amr ["pwd"] and no acr: one password proof).
_AMR_CLASSES: Mapping[str, str] = {"pwd": "knowledge", "pin": "knowledge", "otp": "possession", "sms": "possession",
                                   "hwk": "possession", "swk": "possession", "fpt": "inherence", "face": "inherence",
                                   "fed": "federated"}


def essential_acr(claims: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The values of an essential `acr` claim request (OIDC Core §5.5.1.1), () for "any acr", None when
    `acr` is not essential. Unknown values are kept: a request naming only unknown ones cannot be met."""
    for member in ("id_token", "userinfo"):
        wanted = (claims.get(member) or {}).get("acr")
        if isinstance(wanted, dict) and wanted.get("essential") is True:
            values = wanted.get("values") if "values" in wanted else [wanted["value"]] if "value" in wanted else []
            if isinstance(values, str):  # not the array §5.5.1 defines, but its meaning is plain
                values = [values]
            # anything else that is not an array names no level: never "any acr" for a malformed request
            return tuple(str(v) for v in values) if isinstance(values, list) else (repr(values),)
    return None


def session_proof(user_id: str, amr: Sequence[str], acr: str | None, auth_time: int) -> Proof:
    """What an existing session proves: its recorded amr and acr, as one proof.

    Without `mfa` in its amr the sign-in used one factor class (combined_amr adds `mfa` whenever two
    were used), so it is read back as one class even when its amr names more values (["fed", "pwd"]:
    an upstream's password, red team)."""
    known = [_AMR_CLASSES[v] for v in amr if v in _AMR_CLASSES]
    classes = frozenset(known if "mfa" in amr else known[:1])
    return Proof(user_id=user_id, amr=tuple(amr), classes=classes, time=auth_time,  # type: ignore[arg-type]
                 acr=acr if acr in LEVELS else PASSWORD)


@dataclass(frozen=True, slots=True)
class Need:
    """The level a sign-in of one user needs, and the second factors that user has enrolled."""

    floor: str  # mandatory: the setting, the client, an essential acr, the user's own policy
    level: str  # the floor, or stricter when acr_values asks for a level the user can reach
    factors: tuple[SecondFactor, ...]

    def gap(self, proofs: Sequence[Proof]) -> Missing | None:
        """What `proofs` still lack; a voluntary level is given up once one more factor has been tried."""
        lacking = missing(self.floor, proofs)
        if lacking is None and self.level != self.floor and len(proofs) < 2:
            wanted = missing(self.level, proofs)  # acr_values is voluntary: a level out of reach is given up
            return wanted if wanted is not None and self.reachable(wanted, proofs) else None
        return lacking

    def can_reach(self, level: str) -> bool:
        """Whether this user's enrolled factors can meet `level` at all."""
        if level in (PHR, PHRH):
            return any(f.phishing_resistant for f in self.factors)
        return level == PASSWORD or bool(self.factors)

    def reachable(self, gap: Missing, proofs: Sequence[Proof]) -> bool:
        """Whether one of the user's factors can still fill `gap`."""
        if gap == "second_factor":
            return bool(self.factors)
        if gap == "phishing_resistant":
            return any(f.phishing_resistant for f in self.factors)
        if gap == "hardware_bound":  # a passkey that turned out not to be hardware-bound will not become one
            return any(f.phishing_resistant for f in self.factors) and not any(p.phishing_resistant for p in proofs)
        return gap == "login"


class LevelPolicy:
    """The level rules of one server: its global setting and the enrolled second factors."""

    def __init__(self, factors: Mapping[str, SecondFactor], required_acr: str | None = None) -> None:
        self.factors = factors
        self.required_acr = required_acr

    async def enrolled(self, user_id: str) -> tuple[SecondFactor, ...]:
        return tuple([f for f in self.factors.values() if await f.enrolled(user_id)])

    @staticmethod
    def unmeetable(req: AuthorizationRequest) -> bool:
        """An essential acr naming only values this server does not know: fail before any page."""
        values = essential_acr(req.claims)
        return values is not None and bool(values) and not any(v in LEVELS for v in values)

    async def need(self, req: AuthorizationRequest, client: Client | None, user_id: str) -> Need:
        factors = await self.enrolled(user_id)
        values = essential_acr(req.claims) or ()
        known = [v for v in values if v in LEVELS]
        mandatory = strictest([
            self.required_acr if client is not None or not exempt_from_required_acr(req.redirect_uri) else None,
            str(client.extra.get(CLIENT_LEVEL_FIELD)) if client is not None else None,
            min(known, key=LEVELS.index) if known else None,
            MFA if factors else None,
            PASSWORD,
        ]) or PASSWORD
        probe = Need(mandatory, mandatory, factors)
        for wanted in (req.acr_values or "").split():
            if wanted not in LEVELS or LEVELS.index(wanted) <= LEVELS.index(mandatory):
                continue
            if probe.can_reach(wanted):
                return Need(mandatory, wanted, factors)
        return probe

    @staticmethod
    def stated(req: AuthorizationRequest, achieved: str | None) -> str | None:
        """The `acr` to put in the ID token: with an essential acr, the strictest of its values met."""
        values = essential_acr(req.claims)
        if not values or achieved not in LEVELS:
            return achieved
        met = [v for v in values if v in LEVELS and LEVELS.index(v) <= LEVELS.index(achieved)]
        return max(met, key=LEVELS.index) if met else achieved
