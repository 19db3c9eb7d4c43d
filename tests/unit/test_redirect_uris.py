"""Redirect URIs as browsers parse them (RFC 6749 §3.1.2, RFC 8252 §7-8, RFC 9700 §4.1.3)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import ada_url
import orjson
import pytest
from hypothesis import given as examples
from hypothesis import settings
from hypothesis import strategies as st

from ostiary.server.redirect_uris import (
    RedirectUriRefused,
    check_redirect_uri,
    form_action_source,
    match_redirect_uri,
)

ALLOWED = [
    "https://app.example/cb",
    "https://app.example",
    "https://app.example:8443/cb?tenant=7",
    "http://127.0.0.1/cb",
    "http://127.0.0.1:51004/oauth2redirect/example-provider",
    "http://[::1]:4000/cb",
    "http://localhost:9000/callback",
    "com.example.app:/oauth2redirect/example-provider",
    "com.example.app://callback",
]

REFUSED = {
    "backslash (browsers read it as '/')": "http://localhost:9649\\@127.0.0.1/cb",
    "userinfo": "https://app.example@evil.example/cb",
    "empty userinfo": "https://@evil.example/cb",
    "fragment": "https://app.example/cb#f",
    "empty fragment": "https://app.example/cb#",
    "control character": "https://app.example/c\x00b",
    "tab (browsers drop it)": "https://app.ex\tample/cb",
    "newline": "https://app.example/cb\n",
    "space": "https://app.example/c b",
    "port too large": "https://app.example:65536/cb",
    "port zero": "http://127.0.0.1:0/cb",
    "empty port": "https://app.example:/cb",
    "non-numeric port": "https://app.example:80a/cb",
    "unclosed IPv6 literal": "http://[::1",
    "upper case host": "https://APP.example/cb",
    "upper case scheme": "HTTPS://app.example/cb",
    "dot segments": "https://app.example/a/../cb",
    "encoded dot segments": "https://app.example/a/%2e%2e/cb",
    "default port written": "https://app.example:443/cb",
    "hex IPv4 (browsers read 127.0.0.1)": "http://0x7f.1/cb",
    "http off loopback": "http://app.example/cb",
    "host that is no DNS name": "https://a,b.example/cb",
    "http on another loopback address": "http://127.0.0.2/cb",
    "non-canonical IPv6": "http://[0:0::1]/cb",
    "non-ASCII": "https://app.exämple/cb",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,hi",
    "private-use scheme without a dot": "myapp:/cb",
    "private-use scheme without a path": "com.example.app:cb",
    "websocket": "wss://app.example/cb",
    "relative": "/cb",
    "no host": "https://",
    "empty": "",
}


@pytest.mark.parametrize("uri", ALLOWED)
def test_rfc8252_7_allowed_redirect_uris_are_accepted(uri):
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize("uri", REFUSED.values(), ids=REFUSED.keys())
def test_rfc9700_4_1_3_redirect_uris_browsers_read_differently_are_refused(uri):
    with pytest.raises(RedirectUriRefused):
        check_redirect_uri(uri)


def test_rfc9700_4_1_3_backslash_attack_does_not_match_registered_loopback_uri():
    # urlsplit sees host 127.0.0.1; Chromium sees host localhost:9649 and would post the code there.
    assert match_redirect_uri("http://localhost:9649\\@127.0.0.1/cb", ["http://127.0.0.1/cb"], client_id="c") is None


def test_rfc9700_4_1_3_matching_is_exact_string_comparison():
    registered = ["https://app.example/cb", "http://localhost:9000/cb"]
    assert match_redirect_uri("https://app.example/cb", registered, client_id="c") == "https://app.example/cb"
    for given in ("https://app.example/cb/", "https://app.example/CB", "https://app.example/cb?x=1",
                  "https://app.example:443/cb", "http://localhost:9001/cb", "http://localhost/cb"):
        assert match_redirect_uri(given, registered, client_id="c") is None, given


def test_rfc8252_7_3_loopback_ip_literal_matches_on_any_port_only():
    registered = ["http://127.0.0.1/cb", "http://[::1]:1234/cb"]
    for given in ("http://127.0.0.1:51234/cb", "http://127.0.0.1/cb", "http://[::1]/cb", "http://[::1]:4000/cb"):
        assert match_redirect_uri(given, registered, client_id="c") == given
    for given in ("http://127.0.0.1:5/other", "http://127.0.0.1:5/cb?x", "http://[::1]:5/cb/",
                  "https://127.0.0.1:5/cb", "http://localhost:5/cb"):
        assert match_redirect_uri(given, registered, client_id="c") is None, given


def test_registrations_refused_by_the_new_rules_stop_matching_with_an_audit_event(caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    legacy = "https://APP.example/cb"  # stored before the rules; a browser would go to app.example
    assert match_redirect_uri(legacy, [legacy], client_id="old") is None
    events = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "ostiary.audit"]
    assert events and events[-1]["event"] == "redirect_uri_refused" and events[-1]["client_id"] == "old"


def test_csp3_form_action_source_names_only_the_redirect_uri():
    assert form_action_source("https://app.example/cb?x=1") == "https://app.example/cb"
    assert form_action_source("http://127.0.0.1:5000/a;b,c") == "http://127.0.0.1:5000/a%3Bb%2Cc"
    assert form_action_source("com.example.app:/cb") == "com.example.app:"
    assert form_action_source("http://[::1]:8000/cb") == "http:"  # CSP cannot name an IPv6 literal


# Pieces that make parsers disagree (hosts, separators, ports, paths), joined in any order after a scheme.
_PIECES = st.sampled_from([
    "127.0.0.1", "[::1]", "localhost", "app.example", "APP.example", "0x7f.1", "[0:0::1]", "127.1", "evil.example",
    "xn--bcher-kva.example", ",", "", "\\", "@", "\\@", ":", "%40", "#", "\t", " ", "%00", "\x7f",
    ":0", ":80", ":443", ":9649", ":65536", ":08", "/", "/cb", "/a/../cb", "/%2e%2e/cb", "/@127.0.0.1/cb", "//evil",
    ";x", "?x=1", "?", "#f", "/c b", ".", "%2F", "\u00e9",
])
_URLS = st.builds(lambda scheme, rest: scheme + "".join(rest),
                  st.sampled_from(["http://", "https://", "com.example.app:", "com.example.app:/", "HTTP://",
                                   "http:/", "http:\\\\", "javascript:"]),
                  st.lists(_PIECES, min_size=1, max_size=6))


@settings(max_examples=300, deadline=None)
@examples(_URLS)
def test_rfc9700_4_1_3_accepted_uris_mean_the_same_to_urllib_and_to_browsers(uri):
    """Whatever is accepted, Python and a WHATWG parser agree on its host, port, path and query."""
    try:
        check_redirect_uri(uri)
    except RedirectUriRefused:
        return
    py, web = urlsplit(uri), ada_url.parse_url(uri)
    assert not py.username and not py.password and not py.fragment
    if py.netloc:
        assert py.netloc == web["host"]
        assert (py.path or "/") == (web["pathname"] or "/")
    assert ("?" + py.query if py.query else "") == web["search"]


@settings(max_examples=300, deadline=None)
@examples(_URLS)
def test_rfc8252_7_3_a_match_never_changes_where_the_browser_goes(given_uri):
    """A matching URI reaches the registered host and path (only a loopback IP's port may differ)."""
    registered = ["http://127.0.0.1/cb", "https://app.example/cb", "http://localhost:9000/cb"]
    found = match_redirect_uri(given_uri, registered, client_id="c")
    if found is None:
        return
    web = ada_url.parse_url(found)
    assert any(web["hostname"] == ada_url.parse_url(r)["hostname"] and web["pathname"] == ada_url.parse_url(r)[
        "pathname"] for r in registered)


def test_oidc_rp_initiated_logout_3_post_logout_redirect_matches_exactly_even_on_loopback():
    registered = ["http://127.0.0.1/bye"]
    assert match_redirect_uri("http://127.0.0.1/bye", registered, client_id="c", loopback_any_port=False)
    assert match_redirect_uri("http://127.0.0.1:5000/bye", registered, client_id="c", loopback_any_port=False) is None
