"""Authorization code + PKCE for CLIs with a loopback redirect (RFC 8252 §7.3), tokens stored 0600."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from ostiary.client import CliLogin, LoginError, s256
from ostiary.client.loopback import read_token_file

ISSUER = "https://as.example"


class FakeAS:
    """Plays the authorization server: the 'browser' follows the redirect, the token endpoint checks PKCE."""

    def __init__(self, *, state_override: str | None = None, iss: str | None = ISSUER) -> None:
        self.state_override = state_override
        self.iss = iss
        self.challenge = ""
        self.redirect_uri = ""
        self.token_forms: list[dict[str, str]] = []
        self.opened: list[str] = []

    def open_browser(self, url: str) -> bool:
        self.opened.append(url)
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["code_challenge_method"] == "S256" and query["response_type"] == "code"
        self.challenge = query["code_challenge"]
        self.redirect_uri = query["redirect_uri"]
        back = {"code": "code-1", "state": self.state_override or query["state"]}
        if self.iss:
            back["iss"] = self.iss
        threading.Thread(target=httpx.get, args=(f"{self.redirect_uri}?{urlencode(back)}",), daemon=True).start()
        return True

    def token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.token_forms.append(form)
        if form["grant_type"] == "authorization_code":
            assert s256(form["code_verifier"]) == self.challenge  # RFC 7636 §4.6
            assert form["redirect_uri"] == self.redirect_uri and form["code"] == "code-1"
            return httpx.Response(200, json={"access_token": "at-1", "token_type": "Bearer", "expires_in": 100,
                                             "refresh_token": "rt-1"})
        assert form == {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "cli"}
        return httpx.Response(200, json={"access_token": "at-2", "token_type": "Bearer", "expires_in": 100})


def make_login(fake: FakeAS, tmp_path: Path) -> CliLogin:
    return CliLogin(
        client_id="cli",
        token_file=tmp_path / "cfg" / "tokens.json",
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        open_browser=fake.open_browser,
        timeout=5,
        http=httpx.Client(transport=httpx.MockTransport(fake.token)),
    )


def test_rfc8252_7_3_loopback_login_with_pkce_stores_tokens_0600(tmp_path: Path):
    fake = FakeAS()
    login = make_login(fake, tmp_path)
    token = login.get_token()
    assert token.access_token == "at-1"
    assert urlsplit(fake.redirect_uri).hostname == "127.0.0.1" and urlsplit(fake.redirect_uri).port
    mode = stat.S_IMODE(login.token_file.stat().st_mode)
    assert mode == 0o600
    stored = read_token_file(login.token_file)
    assert stored is not None and stored.refresh_token == "rt-1"
    assert "rt-1" not in repr(login) and "at-1" not in repr(token)


def test_stored_token_is_reused_then_refreshed(tmp_path: Path):
    fake = FakeAS()
    login = make_login(fake, tmp_path)
    login.get_token()
    again = make_login(fake, tmp_path)  # a new process: reads the file, no browser
    assert again.get_token().access_token == "at-1" and len(fake.opened) == 1
    from ostiary.client import Token

    old = read_token_file(login.token_file)
    assert old is not None
    past = time.time() - 90
    again._token = Token(**{**old.to_dict(), "issued_at": past, "expires_at": past + 100})
    fresh = again.get_token()
    assert fresh.access_token == "at-2" and fresh.refresh_token == "rt-1"  # old refresh token kept
    assert len(fake.opened) == 1


def test_rfc6749_10_12_state_mismatch_aborts_login(tmp_path: Path):
    login = make_login(FakeAS(state_override="forged"), tmp_path)
    with pytest.raises(LoginError, match="state"):
        login.login()
    assert not login.token_file.exists()


def test_rfc9207_2_4_iss_of_another_issuer_aborts_login(tmp_path: Path):
    login = make_login(FakeAS(iss="https://evil.example"), tmp_path)
    with pytest.raises(LoginError, match="issuer"):
        login.login()


def test_login_times_out_if_the_browser_never_returns(tmp_path: Path):
    fake = FakeAS()
    login = make_login(fake, tmp_path)
    login.open_browser = lambda url: True
    login.timeout = 0.3
    with pytest.raises(LoginError, match="timed out"):
        login.login()


def _discovering_login(fake: FakeAS, tmp_path: Path, metadata: dict[str, object]) -> CliLogin:
    def transport(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # discovery (RFC 8414)
            return httpx.Response(200, json={"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                                             "token_endpoint": f"{ISSUER}/token", **metadata})
        return fake.token(request)

    return CliLogin(client_id="cli", token_file=tmp_path / "tokens.json", issuer=ISSUER, open_browser=fake.open_browser,
                    timeout=5, http=httpx.Client(transport=httpx.MockTransport(transport)))


def test_rfc9207_2_4_missing_iss_aborts_login_when_the_issuer_advertises_it(tmp_path: Path):
    """The mix-up attack: a response without iss, when the real issuer always sends one, came from elsewhere."""
    login = _discovering_login(FakeAS(iss=None), tmp_path, {"authorization_response_iss_parameter_supported": True})
    with pytest.raises(LoginError, match="no iss"):
        login.login()
    assert not login.token_file.exists()


def test_rfc9207_2_4_issuer_that_sends_iss_logs_in(tmp_path: Path):
    login = _discovering_login(FakeAS(), tmp_path, {"authorization_response_iss_parameter_supported": True})
    assert login.login().access_token == "at-1"


def test_rfc9207_2_4_missing_iss_is_accepted_from_an_issuer_that_does_not_advertise_it(tmp_path: Path):
    login = _discovering_login(FakeAS(iss=None), tmp_path, {})
    assert login.login().access_token == "at-1"
