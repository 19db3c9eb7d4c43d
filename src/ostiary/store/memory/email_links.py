"""In-memory mailed links and the lookup of users by address (the contracts of store/email_links.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..email_links import EmailLink, LinkPurpose
from ..identity import User
from .data import MemoryData
from .identity import _detached

__all__ = ["MemoryEmailLinkStore", "MemoryUserEmails"]


class MemoryEmailLinkStore:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def add(self, link: EmailLink) -> None:
        with self._data.lock:
            self._data.email_links[link.digest] = link

    async def peek(self, digest: str, purpose: LinkPurpose, now: int) -> EmailLink | None:
        with self._data.lock:
            link = self._data.email_links.get(digest)
        return link if link is not None and link.purpose == purpose and link.expires_at > now else None

    async def take(self, digest: str, purpose: LinkPurpose, now: int) -> EmailLink | None:
        with self._data.lock:  # check and delete in one step under the lock (data.py)
            link = self._data.email_links.get(digest)
            if link is None or link.purpose != purpose or link.expires_at <= now:
                return None
            del self._data.email_links[digest]
            return link

    def _drop(self, gone: Callable[[EmailLink], bool]) -> int:
        with self._data.lock:
            digests = [d for d, link in self._data.email_links.items() if gone(link)]
            for digest in digests:
                del self._data.email_links[digest]
        return len(digests)

    async def delete_for_user(self, user_id: str, purpose: LinkPurpose) -> int:
        return self._drop(lambda link: link.user_id == user_id and link.purpose == purpose)

    async def purge_expired(self, now: int) -> int:
        return self._drop(lambda link: link.expires_at <= now)


class MemoryUserEmails:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    async def users_with_email(self, address: str, limit: int) -> Sequence[User]:
        wanted = address.lower()
        with self._data.lock:
            found = sorted((u for u in self._data.users.values()
                            if str(u.claims.get("email", "")).lower() == wanted),
                           key=lambda u: (u.claims.get("email_verified") is not True, u.username))  # verified first
        return [_detached(u) for u in found[:limit]]
