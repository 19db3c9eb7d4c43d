"""Mailed links: a 256-bit secret in a URL built from the issuer, its digest stored, used once.

The URL is always `issuer + path` (never the request's Host header, which an attacker can set to
their own host and so receive the secret: a "poisoned reset link"). Mails are sent in the background,
so the page a person sees, and when they see it, never depends on whether a mail went out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Coroutine
from typing import Any

from ...mailer import Mail, Mailer, MailError
from ...store.email_links import EmailLink, EmailLinkStore, LinkPurpose
from ...store.identity import User
from ..audit import audit

__all__ = ["LinkMailer", "verified_email"]

log = logging.getLogger("ostiary.mail")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
MAX_PENDING = 100  # mails being sent at once; past it a request is dropped (and audited), never queued


def verified_email(user: User) -> str | None:
    """The user's address if it is verified (OIDC Core §5.1 `email_verified` true), else None."""
    email = user.claims.get("email")
    return email if isinstance(email, str) and user.claims.get("email_verified") is True else None


async def _logged(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except Exception:  # a background mail never takes the server down; the id-less trace is for the operator
        log.exception("sending a mail failed")


def _digest(token: str) -> str | None:
    return hashlib.sha256(token.encode()).hexdigest() if _TOKEN.fullmatch(token) else None


class LinkMailer:
    def __init__(self, issuer: str, store: EmailLinkStore, mailer: Mailer, site_name: str) -> None:
        self._issuer = issuer
        self.store = store
        self._mailer = mailer
        self.site_name = site_name
        self._pending: set[asyncio.Task[None]] = set()

    async def issue(self, purpose: LinkPurpose, user: User, email: str, lifetime: int, path: str) -> str:
        """A new link for `user` at `email`, valid `lifetime` seconds: the URL to mail."""
        token = secrets.token_urlsafe(32)
        await self.store.add(EmailLink(hashlib.sha256(token.encode()).hexdigest(), purpose, user.id, email,
                                       int(time.time()) + lifetime))
        return f"{self._issuer}{path}?token={token}"

    async def peek(self, token: str, purpose: LinkPurpose) -> EmailLink | None:
        digest = _digest(token)
        return await self.store.peek(digest, purpose, int(time.time())) if digest else None

    async def take(self, token: str, purpose: LinkPurpose) -> EmailLink | None:
        digest = _digest(token)
        return await self.store.take(digest, purpose, int(time.time())) if digest else None

    async def send(self, mail: Mail, purpose: LinkPurpose, sub: str) -> bool:
        """Send now; a failure is audited (without the address's local part), never raised."""
        fields: dict[str, Any] = {"purpose": purpose, "sub": sub, "domain": mail.to.rpartition("@")[2][:255]}
        try:
            await self._mailer.send(mail)
        except MailError as exc:
            audit("email_failed", reason=str(exc).replace(mail.to, "<recipient>"), **fields)
            return False
        audit("email_sent", **fields)
        return True

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background (the answer does not wait for lookups or the SMTP server)."""
        if len(self._pending) >= MAX_PENDING:
            work.close()
            audit("email_dropped", reason="too many mails pending")
            return
        task = asyncio.create_task(_logged(work))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for the mails under way (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
