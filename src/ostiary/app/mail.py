"""Wires password reset and email verification from [smtp] (docs/sign-in.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from ..config import Settings
from ..mailer import mailer_from_settings
from ..server.email.links import LinkMailer
from ..server.email.reset import PasswordReset, ResetLimits
from ..server.email.verify import EmailVerification
from ..server.lifecycle import UserGrants, end_user_access
from ..server.users import UserService
from ..store.changes import ChangeLog
from ..store.email_links import EmailLinkStore, UserEmails
from ..store.identity import LoginThrottle, SessionStore, ThrottleRule, UserStore

__all__ = ["MailServices", "mail_services"]

# Mails to one account (and to one mailbox): three, then 2, 4, 8 ... up to 15 minutes apart; a
# quiet hour starts afresh. So a stranger can put at most about fifteen mails an hour in anyone's inbox.
MAILS = ThrottleRule(free=3, max_delay=900, window=3600)


@dataclass(frozen=True, slots=True)
class MailServices:
    links: LinkMailer
    reset: PasswordReset
    verification: EmailVerification


def mail_services(settings: Settings, store: EmailLinkStore, emails: UserEmails, users: UserStore,
                  user_service: UserService, throttle: LoginThrottle, sessions: SessionStore, tokens: UserGrants,
                  changes: ChangeLog) -> MailServices | None:
    """The services, or None without an SMTP host; raises ConfigError (an unreadable password file)."""
    mailer = mailer_from_settings(settings.smtp)
    if mailer is None:
        return None
    smtp, t = settings.smtp, settings.throttle
    links = LinkMailer(settings.issuer, store, mailer, settings.branding.name)
    end_access = None if smtp.keep_refresh_tokens else partial(
        end_user_access, reason="password_reset", sessions=sessions, tokens=tokens, changes=changes)
    limits = ResetLimits(address=ThrottleRule(free=2 * settings.oidc.login_attempts, max_delay=t.max_delay,
                                              window=t.window), account=MAILS)
    reset = PasswordReset(links, users, emails, user_service, throttle, limits,
                          smtp.reset_link_lifetime, sessions, end_access)
    verification = EmailVerification(links, users, throttle, MAILS, smtp.verify_link_lifetime)
    return MailServices(links, reset, verification)
