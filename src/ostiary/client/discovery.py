"""Authorization server metadata discovery (RFC 8414, falling back to OpenID Connect Discovery 1.0).

The RFC 8414 well-known URI goes between the host and the issuer's path; the OIDC one is appended
to the issuer. The ``issuer`` in the answer must equal the one asked for (RFC 8414 §3.3).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

__all__ = ["DiscoveryError", "afetch_metadata", "check_metadata", "fetch_metadata", "metadata_urls"]


class DiscoveryError(Exception):
    """The metadata could not be fetched or does not belong to the issuer; the message says why."""


def metadata_urls(issuer: str) -> tuple[str, str]:
    """The RFC 8414 URL and the OIDC Discovery URL for ``issuer``, in the order they are tried."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    oauth = urlunsplit((parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", ""))
    oidc = issuer.rstrip("/") + "/.well-known/openid-configuration"
    return oauth, oidc


def check_metadata(doc: object, issuer: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise DiscoveryError("metadata is not a JSON object")
    if doc.get("issuer") != issuer:  # RFC 8414 §3.3: prevents metadata impersonation
        raise DiscoveryError(f"metadata names issuer {doc.get('issuer')!r}, expected {issuer!r}")
    return doc


def _parse(response: httpx.Response, issuer: str) -> dict[str, Any] | None:
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise DiscoveryError(f"metadata endpoint answered HTTP {response.status_code}")
    try:
        return check_metadata(response.json(), issuer)
    except ValueError as exc:
        raise DiscoveryError("metadata is not JSON") from exc


def fetch_metadata(http: httpx.Client, issuer: str) -> dict[str, Any]:
    """Fetch and check the issuer's metadata; raises DiscoveryError (also for network errors)."""
    for url in metadata_urls(issuer):
        try:
            doc = _parse(http.get(url, headers={"Accept": "application/json"}), issuer)
        except httpx.HTTPError as exc:
            raise DiscoveryError(f"cannot reach {url}: {type(exc).__name__}") from exc
        if doc is not None:
            return doc
    raise DiscoveryError(f"no metadata found for issuer {issuer}")


async def afetch_metadata(http: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """Async fetch_metadata."""
    for url in metadata_urls(issuer):
        try:
            doc = _parse(await http.get(url, headers={"Accept": "application/json"}), issuer)
        except httpx.HTTPError as exc:
            raise DiscoveryError(f"cannot reach {url}: {type(exc).__name__}") from exc
        if doc is not None:
            return doc
    raise DiscoveryError(f"no metadata found for issuer {issuer}")
