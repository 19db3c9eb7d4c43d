"""End-users: argon2id passwords, profile claims, and login with throttling and no enumeration."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..config import Settings
from ..errors import InvalidRequest, NotFound
from ..mailer import valid_address
from ..store.email_links import EmailLinkStore
from ..store.identity import LoginThrottle, ThrottleRule, User, UserStore
from .audit import audit
from .hashing import HashingBusy, HashingPool

__all__ = ["LoginLimits", "LoginResult", "UserService", "login_limits", "validate_username"]

# OIDC Core §5.1 standard claims that can be set on a user.
STANDARD_CLAIMS = frozenset({
    "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile",
    "picture", "website", "email", "email_verified", "gender", "birthdate", "zoneinfo", "locale",
    "phone_number", "phone_number_verified", "address", "updated_at",
})  # not fhirUser: an access fact, set only with `ostiary user access`


def validate_username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > 255 or any(c.isspace() or ord(c) < 32 for c in name):
        raise InvalidRequest("a username is 1-255 characters without spaces")
    return name


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User | None
    retry_after: int = 0  # > 0: throttled, nothing was checked


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Progressive delays per user and address; a user across all addresses and an address across
    all users get twenty and four times as many attempts (distributed guessing; people share one)."""

    user: ThrottleRule  # one username from one address
    account: ThrottleRule  # one username from anywhere
    address: ThrottleRule  # one address, any username
    hashing: HashingPool


def login_limits(settings: Settings) -> LoginLimits:
    t = settings.throttle
    return LoginLimits(
        user=ThrottleRule(free=settings.oidc.login_attempts, max_delay=t.max_delay, window=t.window),
        account=ThrottleRule(free=20 * settings.oidc.login_attempts, max_delay=t.max_delay, window=t.window),
        address=ThrottleRule(free=4 * settings.oidc.login_attempts, max_delay=t.max_delay, window=t.window),
        hashing=HashingPool(t.password_hash_concurrency, t.password_hash_queue),
    )


class UserService:
    # argon2id with the library's RFC 9106 "low memory" defaults (64 MiB, t=3, p=4).
    _hasher = PasswordHasher()
    # Verified for unknown usernames so both paths cost the same (no enumeration by timing).
    _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))

    def __init__(self, store: UserStore, throttle: LoginThrottle, limits: LoginLimits,
                 custom_claims: frozenset[str] = frozenset(), links: EmailLinkStore | None = None) -> None:
        self._store = store
        self._links = links  # mailed password-reset links, voided when an administrator sets a password
        self._throttle = throttle
        self._limits = limits
        self._claims = STANDARD_CLAIMS | custom_claims  # the operator's own (oidc.custom_claims)

    async def create(self, username: str, password: str | None, claims: Mapping[str, Any] | None = None) -> User:
        """Raises UserExists or InvalidRequest."""
        self._check_claims(claims or {})
        user = User(id=secrets.token_urlsafe(12), username=validate_username(username),
                    password_hash=await self.hash_password(password) if password else None, claims=dict(claims or {}))
        await self._store.create(user)
        return user

    async def hash_password(self, password: str) -> str:
        """The argon2id hash of a new password; raises InvalidRequest (too short) or HashingBusy."""
        if len(password) < 8:
            raise InvalidRequest("a password needs at least 8 characters")
        return await self._limits.hashing.run(self._hasher.hash, password)  # off the event loop

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        unknown = set(claims) - self._claims
        if unknown:
            raise InvalidRequest(f"unknown claim(s): {', '.join(sorted(unknown))}")
        email = claims.get("email")
        if email is not None and not (isinstance(email, str) and valid_address(email)):
            raise InvalidRequest("email must be one plain address (name@domain)")

    async def _get(self, username: str) -> User:
        user = await self._store.by_username(username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    async def set_password(self, username: str, password: str) -> User:
        """An administrator's new password: the user's pending reset links stop working (docs/sign-in.md)."""
        found = await self._get(username)
        user = await self._store.set_password_hash(found.id, await self.hash_password(password), int(time.time()))
        if user is None:
            raise NotFound(f"no user {username!r}")
        voided = await self._links.delete_for_user(user.id, "reset") if self._links is not None else 0
        audit("password_set_by_administrator", sub=user.id, reset_links_voided=voided)
        return user

    async def store_password_hash(self, user_id: str, password_hash: str) -> User | None:
        """Replace the user's password with one hashed by `hash_password` (a reset); None if unknown."""
        return await self._store.set_password_hash(user_id, password_hash, int(time.time()))

    async def set_disabled(self, username: str, disabled: bool) -> User:
        user = await self._store.set_disabled((await self._get(username)).id, disabled, int(time.time()))
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    async def update_claims(self, username: str, claims: Mapping[str, Any]) -> User:
        self._check_claims(claims)

        def merged(current: Mapping[str, Any]) -> Mapping[str, Any]:
            result = {**current, **claims}
            if "email_verified" not in claims and claims.get("email", current.get("email")) != current.get("email"):
                result["email_verified"] = None  # a new address is unverified until confirmed (docs/sign-in.md)
            return {k: v for k, v in result.items() if v is not None}

        # The claims alone, as a compare-and-set: a password or disabling written meanwhile is kept.
        user = await self._store.change_claims((await self._get(username)).id, merged, int(time.time()))
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    async def login(self, username: str, password: str, address: str) -> LoginResult:
        """Check a password. Same answer and cost for unknown users, wrong passwords, disabled users.

        An attempt is counted before the password is checked (atomically, so 60 parallel guesses
        check at most the free attempts). Guessing from one address delays that username from that
        address only, so an attacker cannot lock the owner out from elsewhere; a success clears the
        user's delays and gives the address its attempt back (people behind one NAT sign in).
        """
        now = int(time.time())
        name = username.lower()[:255]
        user_key, account_key, address_key = f"user:{name}|ip:{address}", f"user:{name}", f"ip:{address}"
        rules = ((user_key, self._limits.user), (account_key, self._limits.account),
                 (address_key, self._limits.address))
        admitted: list[str] = []
        for key, rule in rules:
            wait = await self._throttle.attempt(key, rule, now)
            if wait:
                for given in admitted:  # nothing is checked: no attempt is used up
                    await self._throttle.refund(given)
                audit("login_throttled", username=username[:255], address=address, retry_after=wait)
                return LoginResult(None, retry_after=wait)
            admitted.append(key)
        user = await self._store.by_username(username) if len(username) <= 255 else None
        try:
            ok = await self._limits.hashing.run(self._verify, user, password)
        except HashingBusy:
            for given in admitted:
                await self._throttle.refund(given)
            audit("login_busy", username=username[:255], address=address)
            return LoginResult(None, retry_after=1)
        if not ok or user is None or user.disabled or not user.password_hash:
            audit("login_failed", username=username[:255], address=address)
            return LoginResult(None)
        await self._throttle.reset(user_key)
        await self._throttle.reset(account_key)
        await self._throttle.refund(address_key)
        audit("login_succeeded", sub=user.id, address=address)
        if self._hasher.check_needs_rehash(user.password_hash):
            rehashed = await self._limits.hashing.run(self._hasher.hash, password)
            # Only while the hash checked is still stored: a reset or new password meanwhile is kept.
            await self._store.set_password_hash(user.id, rehashed, None, expected=user.password_hash)
        return LoginResult(user)

    def _verify(self, user: User | None, password: str) -> bool:
        try:
            return self._hasher.verify(user.password_hash if user and user.password_hash else self._dummy_hash,
                                       password)
        except (VerificationError, InvalidHashError):
            return False
