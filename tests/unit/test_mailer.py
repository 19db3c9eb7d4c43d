"""The [smtp] settings and the mailer (issue 11 item 9): TLS modes, the password kept out of sight,
header injection refused, a deadline (the link store's contract: tests/unit/store/test_email_links.py)."""

from __future__ import annotations

import time

import pytest

from ostiary.config import ConfigError, SmtpSettings, load_settings
from ostiary.mailer import Mail, MailError, SmtpMailer, mailer_from_settings, valid_address
from tests._smtp import _free_port, smtp_server


def smtp(**fields: object) -> SmtpSettings:
    base: dict[str, object] = {"host": "127.0.0.1", "port": 25, "security": "none",
                               "from_address": "ostiary@example.org"}
    return SmtpSettings(**{**base, **fields})  # type: ignore[arg-type]


def test_settings_from_env_and_file(tmp_path: object) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "smtp-password"
    secret.write_text("from-a-file\n")
    settings = load_settings(env={"OSTIARY_SMTP__HOST": "mail.example.org", "OSTIARY_SMTP__PORT": "465",
                                  "OSTIARY_SMTP__SECURITY": "tls", "OSTIARY_SMTP__FROM_ADDRESS": "id@example.org",
                                  "OSTIARY_SMTP__USERNAME": "relay", "OSTIARY_SMTP__PASSWORD_FILE": str(secret)})
    assert settings.smtp.password == "from-a-file" and settings.smtp.security == "tls"
    assert "from-a-file" not in repr(settings)  # never printed with the settings
    by_field = smtp(host="mail.example.org", security="starttls", password_file=str(secret))
    mailer = mailer_from_settings(by_field)
    assert mailer is not None and mailer._password == "from-a-file"
    with pytest.raises(ConfigError, match="password_file"):
        mailer_from_settings(smtp(host="mail.example.org", security="tls", password_file=str(secret) + ".missing"))
    assert mailer_from_settings(SmtpSettings()) is None


@pytest.mark.parametrize("fields, message", [
    ({"host": "mail.example.org"}, "loopback"),  # clear text to a remote relay
    ({"from_address": None}, "from_address"),
    ({"from_address": "a@b.example\r\nBcc: x@evil.example"}, "from_address"),
    ({"timeout": 0}, "timeout"),
    ({"reset_link_lifetime": 3600}, "at most|60-900"),
])
def test_settings_that_cannot_work_fail_at_start(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={}, smtp=smtp(**fields))


@pytest.mark.parametrize("address, ok", [
    ("alice@example.org", True), ("a.b+tag@sub.example.org", True),
    ("alice@example.org\r\nBcc: x@evil.example", False), ("alice@example.org\n", False),
    ("Alice <alice@example.org>", False), ("a@example.org, b@example.org", False), ('"a b"@example.org', False),
    ("x" * 65 + "@example.org", False), ("alice@" + "a" * 260, False), ("", False), ("@example.org", False),
])
def test_only_one_plain_address_is_mailed_to(address: str, ok: bool) -> None:
    assert valid_address(address) is ok


async def test_mail_through_smtp_and_injection_refused() -> None:
    with smtp_server() as inbox:
        mailer = SmtpMailer(smtp(port=inbox.port), None)
        await mailer.send(Mail("bob@example.org", "Hello", "Body line\r\nBcc: not-a-header@example.org\n"))
        with pytest.raises(MailError):
            await mailer.send(Mail("bob@example.org\r\nBcc: evil@example.org", "x", "y"))
        with pytest.raises(MailError, match="refused header"):
            await mailer.send(Mail("bob@example.org", "Subject\r\nBcc: evil@example.org", "y"))
    assert len(inbox.mails) == 1 and inbox.envelopes == [("ostiary@example.org", ["bob@example.org"])]
    assert inbox.mails[0]["Bcc"] is None and inbox.mails[0]["Message-ID"]


async def test_starttls_never_falls_back_to_clear_text() -> None:
    with smtp_server() as inbox:  # a server that offers no STARTTLS
        mailer = SmtpMailer(smtp(port=inbox.port, security="starttls"), "the-password")
        with pytest.raises(MailError) as caught:
            await mailer.send(Mail("bob@example.org", "s", "t"))
    assert inbox.mails == [] and "the-password" not in str(caught.value)


async def test_a_silent_server_meets_the_deadline() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts, never greets
    try:
        mailer = SmtpMailer(smtp(port=listener.getsockname()[1], timeout=0.5), None)
        started = time.monotonic()
        with pytest.raises(MailError):
            await mailer.send(Mail("bob@example.org", "s", "t"))
        assert time.monotonic() - started < 3
    finally:
        listener.close()
    with pytest.raises(MailError):  # nothing listening at all
        await SmtpMailer(smtp(port=_free_port()), None).send(Mail("bob@example.org", "s", "t"))


def test_admin_sets_the_address_with_the_cli_and_a_change_clears_its_verification(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from click.testing import CliRunner

    from ostiary.cli import main

    for name in [n for n in os.environ if n.startswith("OSTIARY_")]:
        monkeypatch.delenv(name)
    db = f"sqlite:///{tmp_path}/cli.db"

    def show(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(main, [*args, "--json", "--database-url", db])
        assert result.exit_code == 0, result.output
        claims: dict[str, object] = json.loads(result.output)["claims"]
        return claims

    assert show("user", "create", "ada", "--password", "long enough pw", "--email", "ada@example.org",
                "--email-verified")["email_verified"] is True
    assert show("user", "update", "ada", "--name", "Ada")["email_verified"] is True  # another claim: kept
    assert "email_verified" not in show("user", "update", "ada", "--email", "ada@new.example")
    assert show("user", "update", "ada", "--email", "ada@third.example", "--email-verified")["email_verified"] is True
    bad = CliRunner().invoke(main, ["user", "update", "ada", "--email", "a@b.example, c@d.example",
                                    "--database-url", db])
    assert bad.exit_code != 0 and "one plain address" in bad.output
