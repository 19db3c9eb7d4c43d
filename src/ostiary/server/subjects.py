"""Subject identifiers (OIDC Core §8): public, or pairwise per sector (§8.1).

Only the ID token, UserInfo and logout tokens name a user to a client by this identifier. Every
internal lookup (users, entitlements, sessions, grants, the gateway's identity headers and rate-limit
keys) keeps the internal user id, which is also the `sub` of access tokens (docs/oidc.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from ..errors import InvalidClientMetadata
from ..outbound import FetchError, SafeFetcher
from ..store import Client

__all__ = ["PAIRWISE_SALT", "SubjectMapper", "check_sector", "sector_of"]

log = logging.getLogger("ostiary")
PAIRWISE_SALT = "pairwise_salt"  # server_state row: one random salt per deployment, shared by every node
SUBJECT_TYPES = ("public", "pairwise")


def sector_of(client: Client) -> str | None:
    """The sector identifier (OIDC Core §8.1): the host of `sector_identifier_uri`, else the one host
    of the redirect URIs; None when there is no single host (registration refuses that)."""
    uri = client.extra.get("sector_identifier_uri")
    if isinstance(uri, str) and uri:
        return urlsplit(uri).hostname
    hosts = {urlsplit(u).hostname for u in client.redirect_uris}
    return hosts.pop() if len(hosts) == 1 else None


async def check_sector(fields: dict[str, object], fetcher: SafeFetcher | None, deadline: float) -> None:
    """OIDC Registration §2 and §5: `subject_type` is public or pairwise; the JSON array at
    `sector_identifier_uri` (its URL checked at validation like every fetched URL) names every
    redirect URI; a pairwise client without one has its redirect URIs on one host.

    Raises InvalidClientMetadata (the fetch error's details go to the log, never to the registrant).
    """
    extra = fields.get("extra")
    assert isinstance(extra, dict)
    subject_type = extra.get("subject_type", "public")
    if subject_type not in SUBJECT_TYPES:
        raise InvalidClientMetadata(f"subject_type must be one of {', '.join(SUBJECT_TYPES)}")
    redirect_uris = fields.get("redirect_uris") or ()
    assert isinstance(redirect_uris, tuple)
    uri = extra.get("sector_identifier_uri")
    if uri is None:
        if subject_type == "pairwise" and len({urlsplit(u).hostname for u in redirect_uris}) > 1:
            raise InvalidClientMetadata("a pairwise client with redirect URIs on several hosts needs a "
                                        "sector_identifier_uri (OIDC Core §8.1)")
        return
    if fetcher is None:
        raise InvalidClientMetadata("sector_identifier_uri cannot be checked here")
    try:
        listed = (await fetcher.get(str(uri), deadline=deadline)).json()
    except FetchError as exc:
        log.warning("sector_identifier_uri %s could not be fetched: %s", uri, exc.reason)
        raise InvalidClientMetadata("sector_identifier_uri could not be fetched") from None
    if not isinstance(listed, list) or not all(isinstance(u, str) for u in listed):
        raise InvalidClientMetadata("sector_identifier_uri must return a JSON array of URIs")
    missing = [u for u in redirect_uris if u not in listed]
    if missing:
        raise InvalidClientMetadata(f"redirect URI {missing[0]!r} is not in the sector_identifier_uri list")


class SubjectMapper:
    """The `sub` a client sees for a user: the internal id (public) or HMAC-SHA-256(salt, sector, id)."""

    def __init__(self, salt: Callable[[str, str], Awaitable[str]]) -> None:
        self._get_or_create = salt  # server_state get_or_create: the first node's salt wins
        self._salt: bytes | None = None

    async def subject(self, client: Client, user_id: str) -> str:
        if client.extra.get("subject_type") != "pairwise":
            return user_id
        if self._salt is None:
            self._salt = (await self._get_or_create(PAIRWISE_SALT, secrets.token_urlsafe(32))).encode()
        sector = sector_of(client) or client.client_id
        mac = hmac.new(self._salt, f"{sector}\x00{user_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
