"""Sending mail (password reset, email verification): one small SMTP client with a deadline.

stdlib `smtplib` in a worker thread, not a new dependency: a few mails a minute need no async SMTP
stack, the thread is bounded by the socket timeout, and the caller waits at most `timeout` (the
thread then finishes or fails on its own). Messages are built with `email.policy.SMTP`, which refuses
CR or LF in any header, so an address or subject cannot inject headers. The password is read once
and never logged; a failure is logged without it and raised as `MailError`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol

from .config import ConfigError, SmtpSettings

__all__ = ["Mail", "MailError", "Mailer", "SmtpMailer", "mailer_from_settings", "valid_address"]

log = logging.getLogger("ostiary.mail")

# One plain address: local@domain, no spaces, quotes, angle brackets, commas or control characters
# (RFC 5321 §4.5.3.1.3: at most 254 characters in practice). Anything else is not mailed to.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def valid_address(address: str) -> bool:
    return len(address) <= 254 and _ADDRESS.fullmatch(address) is not None


class MailError(Exception):
    """The mail could not be handed to the SMTP server (the reason is logged, never shown)."""


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Hand `mail` to the relay within the deadline; raises MailError."""


class SmtpMailer:
    def __init__(self, settings: SmtpSettings, password: str | None) -> None:
        assert settings.host is not None and settings.from_address is not None
        self._settings = settings
        self._password = password

    def _message(self, mail: Mail) -> EmailMessage:
        if not valid_address(mail.to):
            raise MailError("not a single plain address")
        msg = EmailMessage(policy=SMTP_POLICY)
        try:
            msg["From"] = str(self._settings.from_address)
            msg["To"] = mail.to
            msg["Subject"] = mail.subject
            msg["Message-ID"] = make_msgid(domain=str(self._settings.from_address).rpartition("@")[2])
        except ValueError as exc:  # CR/LF in a header value
            raise MailError(f"refused header: {exc}") from None
        msg.set_content(mail.text)
        return msg

    def _send(self, msg: EmailMessage) -> None:
        s = self._settings
        host = str(s.host)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, s.port, timeout=s.timeout)
        with smtp:
            if s.security == "starttls":
                smtp.starttls(context=context)  # refuses a server without STARTTLS: never falls back to clear text
            if s.username:
                smtp.login(s.username, self._password or "")
            smtp.send_message(msg)

    async def send(self, mail: Mail) -> None:
        msg = self._message(mail)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, msg), self._settings.timeout)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            # The exception's class and text only: smtplib never puts the password in either.
            raise MailError(f"{type(exc).__name__}: {str(exc)[:200]}") from None


def mailer_from_settings(settings: SmtpSettings) -> SmtpMailer | None:
    """The configured mailer, or None when no SMTP host is set; raises ConfigError."""
    if settings.host is None:
        return None
    password = settings.password
    if settings.password_file:
        try:
            password = Path(settings.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"smtp.password_file: cannot read it: {exc.strerror}") from None
    return SmtpMailer(settings, password)
