"""RP-Initiated Logout 1.0 and Back-Channel Logout 1.0."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit

from .. import jwt
from ..errors import PageError
from ..outbound import FetchError, SafeFetcher
from ..store import Client
from ..store.identity import Session, SessionStore
from .audit import audit
from .client_auth import ClientLookup
from .credentials import digest
from .id_tokens import IdTokenIssuer
from .keyring import KeyRing
from .redirect_uris import match_redirect_uri

__all__ = ["LogoutRequest", "LogoutService"]

log = logging.getLogger("ostiary")


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    client: Client | None
    post_logout_redirect_uri: str | None
    state: str | None
    hint_sub: str | None


class LogoutService:
    def __init__(self, issuer: str, clients: ClientLookup, sessions: SessionStore, keyring: KeyRing,
                 id_tokens: IdTokenIssuer, fetcher: SafeFetcher, timeout: float) -> None:
        self._issuer = issuer
        self._clients = clients
        self._sessions = sessions
        self._keyring = keyring
        self._id_tokens = id_tokens
        self._fetcher = fetcher
        self._timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    async def validate(self, params: Mapping[str, str]) -> LogoutRequest:
        """Raises PageError: a logout request is never redirected anywhere unregistered (open redirect)."""
        hint, client_id = params.get("id_token_hint"), params.get("client_id")
        hint_sub = None
        if hint:
            try:
                verified = jwt.verify(hint, await self._keyring.verification_keys(), issuer=self._issuer,
                                      required=("sub", "aud"), leeway=10 * 365 * 86400)
            except jwt.JWTInvalid as exc:
                raise PageError("invalid_request", f"id_token_hint is not valid: {exc.reason}") from None
            if str(verified.header.get("typ", "JWT")).lower() != "jwt":  # an access or logout token is no hint
                raise PageError("invalid_request", "id_token_hint is not an ID token")
            aud = verified.claims["aud"]
            auds = [aud] if isinstance(aud, str) else list(aud)
            if client_id and client_id not in auds:
                raise PageError("invalid_request", "client_id does not match the id_token_hint")
            client_id = client_id or (auds[0] if auds else None)
            hint_sub = str(verified.claims["sub"])
        client = await self._clients.get(client_id) if client_id else None
        if client_id and client is None:
            raise PageError("invalid_client", "this application is not registered")
        uri = params.get("post_logout_redirect_uri")
        if uri is not None:
            if client is None:
                raise PageError("invalid_request", "post_logout_redirect_uri needs id_token_hint or client_id")
            if match_redirect_uri(uri, client.post_logout_redirect_uris, client_id=client.client_id,
                                  loopback_any_port=False) is None:  # exact match only
                raise PageError("invalid_request", "post_logout_redirect_uri is not registered for this application")
            if hint_sub is None and client.trust_level != "admin":
                # RFC 9700 §4.11.2: client_id alone is anyone's to send; only an ID token the client
                # received proves the request comes from it (RP-Initiated Logout 1.0 §2, §3).
                audit("logout_redirect_refused", client_id=client.client_id,
                      reason="post_logout_redirect_uri of a self-registered client without id_token_hint")
                raise PageError("invalid_request", "post_logout_redirect_uri of an application that registered "
                                                   "itself needs id_token_hint")
        return LogoutRequest(client=client, post_logout_redirect_uri=uri, state=params.get("state"),
                             hint_sub=hint_sub)

    async def for_user(self, req: LogoutRequest, user_id: str | None) -> LogoutRequest:
        """`req` as it may be answered to the browser whose session is `user_id`'s (None: no session).

        RFC 9700 §4.11.2: anyone may hold an ID token for a self-registered app (its author signs in
        to it), so its post-logout URI is used only when the hint's subject is this browser's user;
        otherwise the signed-out page is shown instead of redirecting to the author's site.
        """
        client, uri = req.client, req.post_logout_redirect_uri
        if uri is None or client is None or client.trust_level == "admin" or req.hint_sub is None:
            return req  # admin apps, and self-registered ones without a hint were decided in validate()
        if user_id is not None and await self._id_tokens.subject_for(client, user_id) == req.hint_sub:
            return req
        audit("logout_redirect_refused", client_id=client.client_id,
              reason="id_token_hint names another user than this browser's session (or none)")
        return replace(req, post_logout_redirect_uri=None, state=None)

    async def end(self, cookie: str) -> Session | None:
        """End the session and notify every client that got tokens in it (in the background)."""
        session = await self._sessions.delete(digest(cookie))
        if session is not None:
            audit("logout", sub=session.user_id, sid=session.sid, clients=list(session.clients))
            task = asyncio.create_task(self._notify(session))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return session

    async def frontchannel_uris(self, session: Session) -> list[str]:
        """Front-Channel Logout 1.0 §2-4: the URL of each client of the ended session that registered a
        frontchannel_logout_uri, with `iss` and `sid` when it asked (frontchannel_logout_session_required)."""
        uris = []
        for client_id in session.clients:
            client = await self._clients.get(client_id)
            uri = client.extra.get("frontchannel_logout_uri") if client else None
            if client is None or not isinstance(uri, str) or not uri:
                continue
            if client.extra.get("frontchannel_logout_session_required") is True:
                uri += ("&" if urlsplit(uri).query else "?") + urlencode({"iss": self._issuer, "sid": session.sid})
            uris.append(uri)
        return uris

    async def _notify(self, session: Session) -> None:
        for client_id in session.clients:
            client = await self._clients.get(client_id)
            uri = client.extra.get("backchannel_logout_uri") if client else None
            if client is None or not uri:
                continue
            token = await self._id_tokens.logout_token(client, sub=session.user_id, sid=session.sid)
            try:  # Back-Channel Logout 1.0 §2.5: the RP's URL goes through the safe fetcher (SSRF)
                await self._fetcher.post_form(str(uri), {"logout_token": token}, deadline=self._timeout)
            except FetchError as exc:
                log.warning("back-channel logout to %s failed: %s", client_id, exc.reason)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._timeout)
