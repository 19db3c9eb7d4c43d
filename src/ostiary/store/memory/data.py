"""The tables of the in-memory backend: plain dicts behind one lock, values copied through JSON.

Every store method does its whole read-check-write under ``MemoryData.lock`` and never awaits
inside it, so a check and its write are one step for any number of coroutines (and threads):
that is how single-use consumption stays atomic here, as one conditional statement is in SQL.
Mappings are stored and returned as JSON round trips, so a caller sees what SQL would give back
(lists for tuples, an error for a value JSON cannot hold) and cannot change a stored value in place.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...keys import SigningKey
from ..access import AccessFacts
from ..email_links import EmailLink
from ..federation import LinkedIdentity
from ..grants import AuthorizationCode
from ..identity import Session, User
from ..mfa import TotpSecret
from ..passkeys import CeremonyChallenge, PasskeyCredential
from ..protocols import TokenRecord

__all__ = ["MemoryData", "Throttled", "copy_json"]


def copy_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A detached copy, as a JSON column would store and return it."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(dict(value)))
    return loaded


@dataclass(slots=True)
class Throttled:
    """One throttle key: like SqlLoginThrottle's row."""

    count: int
    locked_until: int


@dataclass(slots=True)
class MemoryData:
    """Every table of one in-memory database (one node: nothing is shared with another process)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)  # client_id -> Client.to_record()
    keys: dict[str, SigningKey] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    revoked_jtis: dict[str, int] = field(default_factory=dict)  # jti -> expires_at
    revoked_grants: dict[str, int] = field(default_factory=dict)  # grant_id -> kept until
    replay: dict[str, int] = field(default_factory=dict)  # key -> expires_at
    state: dict[str, str] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    interactions: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)  # id -> (data, expires_at)
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    consents: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # (user, client) -> scopes
    throttle: dict[str, Throttled] = field(default_factory=dict)
    access: dict[str, AccessFacts] = field(default_factory=dict)
    version: int = 0
    revoked_subjects: dict[str, tuple[int, int]] = field(default_factory=dict)  # user -> (revoked_at, keep_until)
    passkeys: dict[str, PasskeyCredential] = field(default_factory=dict)  # credential_id -> credential
    passkey_challenges: dict[str, CeremonyChallenge] = field(default_factory=dict)  # digest -> challenge
    totp: dict[str, TotpSecret] = field(default_factory=dict)  # user_id -> secret
    recovery_codes: dict[str, set[str]] = field(default_factory=dict)  # user_id -> code digests
    email_links: dict[str, EmailLink] = field(default_factory=dict)  # digest -> link
    federated_identities: dict[tuple[str, str], LinkedIdentity] = field(default_factory=dict)  # (provider, sub)
