"""A fake upstream OpenID provider for federation tests: discovery, JWKS and a token endpoint that signs
ID tokens with a test key; what it puts in them is up to each test."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
from joserfc import jws
from joserfc.jwk import RSAKey

IDP = "https://idp.example"
CLIENT_ID = "ostiary-at-idp"
CLIENT_SECRET = "idp-secret-for-tests"


@dataclass
class FakeIdp:
    issuer: str = IDP
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True, auto_kid=True))
    iss_parameter: bool = True
    sub: str = "upstream-user-1"
    claims: dict[str, Any] = field(default_factory=lambda: {"email": "someone@idp.example", "name": "Upstream User"})
    auth_time: Callable[[], int] = field(default=lambda: int(time.time()))
    tamper: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # changes the ID token claims
    header: dict[str, Any] = field(default_factory=dict)  # extra / overriding JWS header fields
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> the authorize request
    requests: list[httpx.Request] = field(default_factory=list)
    userinfo_sub: str | None = None  # a UserInfo answer about someone else (OIDC Core §5.3.2)
    jwks_fetches: int = 0
    token_calls: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def authorize(self, location: str) -> dict[str, str]:
        """The browser at the upstream: the user signs in; returns the callback's query parameters."""
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        code = f"code-{len(self.codes)}"
        self.codes[code] = params
        answer = {"code": code, "state": params["state"]}
        if self.iss_parameter:
            answer["iss"] = self.issuer
        return answer

    def sign(self, claims: dict[str, Any], alg: str = "RS256") -> str:
        header = {"alg": alg, "typ": "JWT", **({"kid": self.key.kid} if self.key.kid else {}), **self.header}
        return jws.serialize_compact(header, orjson.dumps(claims), self.key, algorithms=[header["alg"]])

    def id_token_claims(self, request: dict[str, str]) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": self.sub, "aud": CLIENT_ID, "exp": now + 300, "iat": now,
                  "nonce": request.get("nonce"), "auth_time": self.auth_time(), **self.claims}
        return self.tamper(claims) if self.tamper else claims

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
                "userinfo_endpoint": self.issuer + "/userinfo",
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "authorization_response_iss_parameter_supported": self.iss_parameter})
        if path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        if path == "/token":
            self.token_calls += 1
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return httpx.Response(401, json={"error": "invalid_client"})
            sent = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if sent is None or sent.get("code_challenge") != challenge or \
                    form.get("redirect_uri") != sent.get("redirect_uri"):
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                                             "id_token": self.sign(self.id_token_claims(sent))})
        if path == "/userinfo":
            if request.headers.get("authorization") != "Bearer at":
                return httpx.Response(401)
            return httpx.Response(200, json={"sub": self.userinfo_sub or self.sub, **self.claims})
        return httpx.Response(404)
