"""A local SMTP server for the tests (aiosmtpd in its own thread): records every mail it receives."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

__all__ = ["Inbox", "link_in", "smtp_server"]


@dataclass
class Inbox:
    port: int
    mails: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # MAIL FROM, RCPT TO

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.mails) >= count, f"expected {count} mail(s), got {len(self.mails)}"
        return self.mails

    def clear(self) -> None:
        self.mails.clear()
        self.envelopes.clear()


def link_in(mail: EmailMessage) -> str:
    """The one URL in a mail's text."""
    body = mail.get_body(("plain",))
    assert body is not None
    urls = re.findall(r"https?://\S+", body.get_content())
    assert len(urls) == 1, urls
    return str(urls[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server() -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 (plain, no authentication) for the duration of the block."""
    from aiosmtpd.controller import Controller

    inbox = Inbox(port=_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            inbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            inbox.mails.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
