"""Redirect URIs as browsers parse them: what may be registered, and what matches at /authorize.

A redirect URI is checked with a WHATWG URL parser (the one browsers follow), not only with
`urllib`: where two parsers disagree (`http://localhost:9649\\@127.0.0.1/cb` is host 127.0.0.1 to
`urlsplit` and host localhost to a browser), the code goes where the browser goes. So a registered
URI must already be in the form a browser serializes it to, and anything a browser rewrites
(backslashes, dot segments, upper case, `0x7f.1`, default ports, spaces) is refused, as are
userinfo, fragments and control characters (RFC 6749 §3.1.2, RFC 9700 §4.1.3, RFC 8252 §7-8).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import ada_url
from ada_url.ada_adapter import ParseAttributes

from .audit import audit

__all__ = ["LOOPBACK_HOSTS", "RedirectUriRefused", "check_redirect_uri", "form_action_source",
           "match_redirect_uri", "registered_default"]

MAX_LENGTH = 2048
# RFC 8252 §7.3: http only on loopback; only the IP literals get the any-port rule (§8.3 on localhost).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})
_LOOPBACK_IPS = frozenset({"127.0.0.1", "[::1]"})
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")
# RFC 8252 §7.1: a private-use scheme is a reverse domain name (com.example.app).
_PRIVATE_USE = re.compile(r"[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+")
# Host names as DNS has them (WHATWG allows `,` `$` `(` and more in a domain), or an IP literal.
_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\]")


class RedirectUriRefused(ValueError):
    """A redirect URI this server does not accept; `reason` says why in words for the registrant."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"redirect URI {uri!r}: {reason}")
        self.reason = reason


def _with_root_path(uri: str) -> str:
    """`https://a.example?x` as a browser writes it: `https://a.example/?x` (special schemes always have a path)."""
    head, sep, rest = uri.partition("://")
    ends = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    end = min(ends, default=len(rest))
    if rest[end:end + 1] == "/":
        return uri
    return head + sep + rest[:end] + "/" + rest[end:]


def _parse(uri: str) -> ParseAttributes:
    if not uri or len(uri) > MAX_LENGTH:
        raise RedirectUriRefused(uri[:100], f"must be 1 to {MAX_LENGTH} characters")
    if _CONTROL_OR_SPACE.search(uri):
        raise RedirectUriRefused(uri, "contains a control character or a space")
    if not uri.isascii():
        raise RedirectUriRefused(uri, "must be ASCII (percent-encode the path, use the punycode host name)")
    if "\\" in uri:
        raise RedirectUriRefused(uri, "contains a backslash, which browsers read as '/'")
    if "#" in uri:
        raise RedirectUriRefused(uri, "must not have a fragment (RFC 6749 §3.1.2)")
    try:
        parts = ada_url.parse_url(uri)
    except ValueError:
        raise RedirectUriRefused(uri, "is not a valid absolute URL") from None
    authority = uri.partition("://")[2].split("/", 1)[0].split("?", 1)[0] if "://" in uri else ""
    if parts["username"] or parts["password"] or "@" in authority:
        raise RedirectUriRefused(uri, "must not contain userinfo ('@' before the host)")
    if parts["port"] == "0":
        raise RedirectUriRefused(uri, "has an invalid port")
    if parts["hostname"] and not _HOST.fullmatch(parts["hostname"]):
        raise RedirectUriRefused(uri, "has a host name that is not a DNS name or an IP address")
    return parts


def check_redirect_uri(uri: str) -> str:
    """`uri` if it may be registered as a redirect URI; raises RedirectUriRefused."""
    _checked(uri)
    return uri


def _checked(uri: str) -> ParseAttributes:
    parts = _parse(uri)
    scheme = parts["protocol"][:-1]
    special = scheme in ("http", "https", "ws", "wss", "ftp", "file")
    written = _with_root_path(uri) if special and "://" in uri else uri
    if parts["href"] != written:
        raise RedirectUriRefused(uri, f"is not written the way browsers read it; write {parts['href']!r}")
    if scheme == "https":
        return parts
    if scheme == "http":
        if parts["hostname"] not in LOOPBACK_HOSTS:
            raise RedirectUriRefused(uri, "http is allowed only on loopback: 127.0.0.1, [::1] or localhost "
                                          "(RFC 8252 §7.3); use https")
        return parts
    if special or not _PRIVATE_USE.fullmatch(scheme):
        raise RedirectUriRefused(uri, f"scheme {scheme!r} is not allowed: use https, loopback http or a "
                                      "private-use scheme named after a domain you own (RFC 8252 §7.1)")
    if not uri[len(scheme) + 1:].startswith("/"):
        raise RedirectUriRefused(uri, "a private-use scheme URI needs a path, like com.example.app:/callback")
    return parts


def _port_free(uri: str, parts: ParseAttributes) -> str | None:
    """The loopback IP URI without its port (RFC 8252 §7.3), or None for any other URI."""
    if parts["protocol"] != "http:" or parts["hostname"] not in _LOOPBACK_IPS:
        return None
    return "http://" + parts["hostname"] + uri[len("http://") + len(parts["host"]):]


def match_redirect_uri(given: str, registered: Iterable[str], *, client_id: str,
                       loopback_any_port: bool = True) -> str | None:
    """The redirect URI to use if `given` matches one registered, else None (an audit event says why).

    Exact string comparison (RFC 9700 §4.1.3), except the port of a loopback IP literal (RFC 8252 §7.3)
    unless `loopback_any_port` is off (post-logout redirects: RP-Initiated Logout 1.0 §3 wants an exact
    match). A registered URI these rules now refuse (stored before they existed) never matches.
    """
    registered = tuple(registered)
    try:
        given_parts = _checked(given)
    except RedirectUriRefused as exc:
        stale = "registered URI no longer allowed: " if given in registered else ""
        audit("redirect_uri_refused", client_id=client_id, redirect_uri=given[:200], reason=stale + exc.reason)
        return None
    given_free = _port_free(given, given_parts) if loopback_any_port else None
    for uri in registered:
        if uri != given and given_free is None:
            continue
        try:
            parts = _checked(uri)
        except RedirectUriRefused as exc:
            audit("redirect_uri_refused", client_id=client_id, redirect_uri=uri,
                  reason=f"registered URI no longer allowed: {exc.reason}")
            continue
        if uri == given or (given_free is not None and _port_free(uri, parts) == given_free):
            return given
    audit("redirect_uri_refused", client_id=client_id, redirect_uri=given, reason="not registered")
    return None


def registered_default(registered: Iterable[str], *, client_id: str) -> str | None:
    """The one registered URI, used when the request names none (RFC 6749 §3.1.2.3), if still allowed."""
    uris = list(registered)
    if len(uris) != 1:
        return None
    return match_redirect_uri(uris[0], uris, client_id=client_id)


def form_action_source(uri: str) -> str:
    """A CSP source expression (CSP3 §2.3.1) allowing a form to post to `uri` and nowhere else."""
    parts = ada_url.parse_url(uri)
    # A private-use scheme has no host; an IPv6 literal cannot be named in a CSP host-source (Chromium
    # drops `http://[::1]:8000/cb` as invalid, which would block the post): both get a scheme-source.
    if not parts["host"] or parts["hostname"].startswith("["):
        return parts["protocol"]
    path = parts["pathname"].replace(";", "%3B").replace(",", "%2C")
    return f"{parts['protocol']}//{parts['host']}{path}"

