"""Password reset by a mailed link (docs/sign-in.md "Password reset and email verification").

Asking: the same answer, at the same time, whatever was typed; the lookups and the mail happen in
the background. A link goes only to a verified address of an enabled account, and the requests are
throttled per client address (in the answer: it says nothing about accounts) and, silently, per
account and per mailbox. Using a link: the new password is checked and hashed first (a weak one does
not burn the link), then the link is taken in one atomic statement, the password replaced, the
user's other links forgotten and their sessions ended (and by default their grants and tokens). A
reset never signs the person in and leaves their second factors as they were: they sign in normally.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from ...errors import InvalidRequest
from ...mailer import Mail, valid_address
from ...store.email_links import UserEmails
from ...store.identity import LoginThrottle, SessionStore, ThrottleRule, User, UserStore
from ..audit import audit
from ..hashing import HashingBusy
from ..users import UserService
from .links import LinkMailer, verified_email

__all__ = ["RESET_PATH", "PasswordReset", "ResetLimits", "ResetOutcome"]

RESET_PATH = "/password/reset"
MAX_IDENTIFIER = 320  # a username is at most 255 characters, an address 254
MAX_ACCOUNTS = 5  # accounts sharing one address that get a mail each


@dataclass(frozen=True, slots=True)
class ResetLimits:
    address: ThrottleRule  # requests from one client address (answered 429 with Retry-After)
    account: ThrottleRule  # mails to one account, and to one mailbox (silently not sent)


@dataclass(frozen=True, slots=True)
class ResetOutcome:
    status: Literal["done", "invalid", "weak", "busy"]
    message: str = ""


class PasswordReset:
    def __init__(self, links: LinkMailer, users: UserStore, emails: UserEmails, user_service: UserService,
                 throttle: LoginThrottle, limits: ResetLimits, lifetime: int, sessions: SessionStore,
                 end_access: Callable[[str], Awaitable[int]] | None) -> None:
        self._links = links
        self._users = users
        self._emails = emails
        self._user_service = user_service
        self._throttle = throttle
        self._limits = limits
        self.lifetime = lifetime
        self._sessions = sessions
        self._end_access = end_access  # None: keep grants and tokens (smtp.keep_refresh_tokens)

    async def request(self, identifier: str, address: str) -> int:
        """Ask for a link for a username or an address: 0, or the seconds this client must wait."""
        wait = await self._throttle.attempt(f"reset-ip:{address}", self._limits.address, int(time.time()))
        if wait:
            audit("password_reset_throttled", address=address, retry_after=wait)
            return wait
        self._links.later(self._mail_links(identifier.strip(), address))
        return 0

    async def _candidates(self, identifier: str) -> list[User]:
        if not identifier or len(identifier) > MAX_IDENTIFIER:
            return []
        found = [u for u in [await self._users.by_username(identifier)] if u is not None]
        if valid_address(identifier):
            found += [u for u in await self._emails.users_with_email(identifier, MAX_ACCOUNTS)
                      if u.id not in {f.id for f in found}]
        return found[:MAX_ACCOUNTS]

    async def _mail_links(self, identifier: str, address: str) -> None:
        candidates = await self._candidates(identifier)
        if not candidates:
            audit("password_reset_requested", address=address, sub=None, outcome="no_account")
        for user in candidates:
            audit("password_reset_requested", address=address, sub=user.id,
                  outcome=await self._mail_link(user))

    async def _mail_link(self, user: User) -> str:
        email = verified_email(user)
        if user.disabled or not user.password_hash:
            return "not_allowed"
        if email is None or not valid_address(email):
            return "unverified"
        now = int(time.time())
        for key in (f"reset-user:{user.id}", f"reset-mail:{email.lower()}"):
            if await self._throttle.attempt(key, self._limits.account, now):
                return "throttled"
        url = await self._links.issue("reset", user, email, self.lifetime, RESET_PATH)
        minutes = self.lifetime // 60
        text = (f"Someone asked to reset the password of the account {user.username} at {self._links.site_name}.\n\n"
                f"To choose a new password, open this link within {minutes} minutes:\n\n{url}\n\n"
                "The link works once. If you did not ask for this, ignore this mail: your password stays as it is.\n")
        sent = await self._links.send(Mail(email, f"Reset your {self._links.site_name} password", text), "reset",
                                      user.id)
        return "sent" if sent else "mail_failed"

    async def usable(self, token: str) -> bool:
        """Whether the link can still be used (showing the form does not use it: mail scanners open links)."""
        return await self._links.peek(token, "reset") is not None

    async def complete(self, token: str, password: str, address: str) -> ResetOutcome:
        """Set a new password with a link; never signs anyone in."""
        if await self._links.peek(token, "reset") is None:
            audit("password_reset_refused", address=address, reason="link unknown, used or expired")
            return ResetOutcome("invalid")
        try:
            password_hash = await self._user_service.hash_password(password)
        except InvalidRequest as exc:
            return ResetOutcome("weak", exc.description or "")
        except HashingBusy:
            return ResetOutcome("busy")
        link = await self._links.take(token, "reset")
        user = await self._users.get(link.user_id) if link else None
        if link is None or user is None or user.disabled or verified_email(user) != link.email:
            audit("password_reset_refused", address=address, sub=link.user_id if link else None,
                  reason="link used, or the account or its address changed")
            return ResetOutcome("invalid")
        await self._user_service.store_password_hash(user.id, password_hash)
        await self._links.store.delete_for_user(user.id, "reset")
        if self._end_access is not None:
            grants = await self._end_access(user.id)
            sessions = None
        else:
            grants, sessions = 0, await self._sessions.delete_for_user(user.id)
        audit("password_reset_completed", sub=user.id, address=address, sessions_ended=sessions,
              grants_revoked=grants, tokens_kept=self._end_access is None)
        return ResetOutcome("done")
