"""Users' access facts: what decides clinical access, kept apart from profile claims.

Only an administrator sets them (``ostiary user access``); nothing a user, a client or an upstream
identity provider sends writes them. A user without a record has no access facts at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["ROLES", "AccessFacts", "AccessStore"]

# launch: may open the EHR launcher; develop: may register apps for testing (kept for the admin API).
ROLES = frozenset({"launch", "develop"})


@dataclass(frozen=True, slots=True)
class AccessFacts:
    """One user's access facts.

    ``fhir_user`` is a reference relative to this server's FHIR base (``Practitioner/prac-01``).
    ``patients`` are, for a Patient user, the patients an administrator linked to them and, for a
    Practitioner (or PractitionerRole), the patients they may see; ``group`` names a FHIR Group on
    this server whose members they may also see; ``all_patients`` lets a practitioner see everyone.
    """

    user_id: str
    fhir_user: str | None = None
    roles: frozenset[str] = frozenset()
    patients: tuple[str, ...] = ()
    group: str | None = None
    all_patients: bool = False
    updated_at: int = field(default_factory=lambda: int(time.time()))


class AccessStore(Protocol):
    async def get(self, user_id: str) -> AccessFacts | None:
        """The user's access facts, or None when an administrator never set any."""

    async def put(self, facts: AccessFacts) -> None:
        """Create or replace the user's access facts."""

    async def delete(self, user_id: str) -> bool:
        """Remove the user's access facts; False if there were none."""
