"""The WebAuthn Relying Party of this server: its id is the issuer's host, its origin the issuer's origin.

WebAuthn Level 2 §5.1.4.1 / §5.1.3: an RP ID must be a registrable domain suffix of (or equal to) the
origin's effective domain, so an IP-literal host has none; browsers also demand a secure context, which
`http://` is only on `localhost`. With such an issuer passkeys are off, and the server says so once at start.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["PasskeysOff", "RelyingParty"]


class PasskeysOff(Exception):
    """Passkeys cannot work with this issuer (the message says why)."""


def _local(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


@dataclass(frozen=True, slots=True)
class RelyingParty:
    id: str  # the RP ID: the issuer's host
    origin: str  # the only origin accepted in clientDataJSON (§7.1 step 9, §7.2 step 13)
    name: str  # shown by authenticators next to the account name

    @classmethod
    def from_issuer(cls, issuer: str, name: str) -> RelyingParty:
        """Raises PasskeysOff when the issuer's host is an IP address or the issuer is not a secure context."""
        parts = urlsplit(issuer)
        host = (parts.hostname or "").lower()
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise PasskeysOff(f"passkeys are off: the issuer's host {host} is an IP address, and WebAuthn needs a "
                              "domain name as its RP ID (use for example http://localhost:PORT)")
        if not host or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not _local(host)):
            raise PasskeysOff("passkeys are off: browsers offer WebAuthn only on https:// or http://localhost")
        default_port = 443 if parts.scheme == "https" else 80
        port = "" if parts.port in (None, default_port) else f":{parts.port}"
        return cls(id=host, origin=f"{parts.scheme}://{host}{port}", name=name)
