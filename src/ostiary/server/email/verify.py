"""Email verification: the signed-in user asks for a link; opening it sets `email_verified` true.

A link proves that whoever holds the mailbox of the address it was sent to came back with it, so it
confirms only that address: if the address changed since (an admin set another), the link is refused.
"""

from __future__ import annotations

import time
from typing import Literal

from ...mailer import Mail, valid_address
from ...store.identity import ClaimsChange, LoginThrottle, ThrottleRule, User, UserStore
from ..audit import audit
from .links import LinkMailer

__all__ = ["CONFIRM_PATH", "EmailVerification"]

CONFIRM_PATH = "/account/email/confirm"

SendResult = Literal["sent", "no_address", "verified", "failed"] | int  # int: seconds to wait


def _verified(email: str) -> ClaimsChange:
    """The claims with `email_verified` true, only while the address is still `email` (else nothing)."""
    return lambda claims: {**claims, "email_verified": True} if claims.get("email") == email else None


class EmailVerification:
    def __init__(self, links: LinkMailer, users: UserStore, throttle: LoginThrottle, limit: ThrottleRule,
                 lifetime: int) -> None:
        self._links = links
        self._users = users
        self._throttle = throttle
        self._limit = limit
        self.lifetime = lifetime

    async def send(self, user: User) -> SendResult:
        """Mail a link to the user's address (now: the person waits on the account page to be told)."""
        email = user.claims.get("email")
        if not isinstance(email, str) or not valid_address(email):
            return "no_address"
        if user.claims.get("email_verified") is True:
            return "verified"
        wait = await self._throttle.attempt(f"verify-user:{user.id}", self._limit, int(time.time()))
        if wait:
            return wait
        url = await self._links.issue("verify", user, email, self.lifetime, CONFIRM_PATH)
        hours = max(1, self.lifetime // 3600)
        text = (f"To confirm that {email} is the address of the account {user.username} at "
                f"{self._links.site_name}, open this link within {hours} hour{'s' if hours > 1 else ''}:\n\n"
                f"{url}\n\nIf you did not ask for this, ignore this mail.\n")
        sent = await self._links.send(Mail(email, f"Confirm your email address for {self._links.site_name}", text),
                                      "verify", user.id)
        audit("email_verification_sent" if sent else "email_verification_failed", sub=user.id)
        return "sent" if sent else "failed"

    async def usable(self, token: str) -> bool:
        return await self._links.peek(token, "verify") is not None

    async def confirm(self, token: str) -> User | None:
        """Use the link; the user whose address is now verified, or None (unknown, used, expired, changed)."""
        link = await self._links.take(token, "verify")
        # One conditional write (only while the address is still the one mailed), never a whole record read
        # earlier: an administrator's change of address or password at the same moment is not lost.
        user = await self._users.change_claims(link.user_id, _verified(link.email), int(time.time())) if link else None
        if link is None or user is None:
            audit("email_verification_refused", sub=link.user_id if link else None)
            return None
        audit("email_verified", sub=user.id)
        return user
