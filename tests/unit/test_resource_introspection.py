"""Opaque tokens through RFC 7662 introspection, with a cache bounded by the token's exp."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest

from ostiary.client import ClientSecretBasic, Secret
from ostiary.keys import SigningKey
from ostiary.resource import Introspection, InvalidToken, IssuerUnavailable, TokenVerifier
from tests.unit._guard_helpers import AUDIENCE, IssuerServer, free_port


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[IssuerServer]:
    with IssuerServer([SigningKey.generate("ES256")]) as server:
        yield server


def make_verifier(issuer: IssuerServer, clock: Clock, **kw: float | bool) -> TokenVerifier:
    auth = ClientSecretBasic("api-1", Secret("api-secret"))
    return TokenVerifier(
        issuer.issuer, AUDIENCE, introspection=Introspection(auth, **kw), timeout=0.5, clock=clock
    )


def active(issuer: IssuerServer, exp: float, **extra: object) -> dict[str, object]:
    return {
        "active": True, "iss": issuer.issuer, "aud": AUDIENCE, "sub": "user-9", "client_id": "c-9",
        "scope": "read", "exp": int(exp), **extra,
    }


def test_rfc7662_2_1_opaque_token_is_introspected_with_client_credentials(issuer: IssuerServer):
    clock = Clock()
    issuer.introspection["opaque-1"] = active(issuer, clock.now + 300)
    principal = make_verifier(issuer, clock).verify("opaque-1")
    assert principal.subject == "user-9" and principal.scopes == {"read"}
    assert issuer.introspection_auth == ["Basic " + base64.b64encode(b"api-1:api-secret").decode()]


def test_rfc7662_4_cache_never_outlives_the_token(issuer: IssuerServer):
    clock = Clock()
    issuer.introspection["opaque-2"] = active(issuer, clock.now + 10)
    verifier = make_verifier(issuer, clock, max_cache_ttl=60.0)
    for _ in range(5):
        verifier.verify("opaque-2")
    assert issuer.hits["/introspect"] == 1  # cached
    clock.now += 40  # past exp (and the leeway): the cache entry is gone, the answer says expired
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify("opaque-2")
    assert issuer.hits["/introspect"] == 2


def test_rfc7662_4_cache_is_bounded_by_max_ttl(issuer: IssuerServer):
    clock = Clock()
    issuer.introspection["opaque-3"] = active(issuer, clock.now + 3600)
    verifier = make_verifier(issuer, clock, max_cache_ttl=30.0)
    verifier.verify("opaque-3")
    clock.now += 31
    del issuer.introspection["opaque-3"]  # revoked meanwhile
    with pytest.raises(InvalidToken, match="not active"):
        verifier.verify("opaque-3")


def test_rfc7662_2_2_inactive_token_is_negatively_cached_briefly(issuer: IssuerServer):
    clock = Clock()
    verifier = make_verifier(issuer, clock, negative_cache_ttl=5.0)
    for _ in range(3):
        with pytest.raises(InvalidToken, match="not active"):
            verifier.verify("unknown")
    assert issuer.hits["/introspect"] == 1
    clock.now += 6
    issuer.introspection["unknown"] = active(issuer, clock.now + 60)
    assert verifier.verify("unknown").subject == "user-9"


def test_rfc7662_introspected_token_for_other_audience_is_refused(issuer: IssuerServer):
    clock = Clock()
    issuer.introspection["opaque-4"] = active(issuer, clock.now + 60, aud="https://other.example")
    with pytest.raises(InvalidToken, match="audience"):
        make_verifier(issuer, clock).verify("opaque-4")


def test_rfc7662_introspected_token_from_other_issuer_is_refused(issuer: IssuerServer):
    clock = Clock()
    issuer.introspection["opaque-5"] = active(issuer, clock.now + 60, iss="https://evil.example")
    with pytest.raises(InvalidToken, match="issuer"):
        make_verifier(issuer, clock).verify("opaque-5")


def test_opaque_token_without_introspection_is_invalid(issuer: IssuerServer):
    with pytest.raises(InvalidToken):
        TokenVerifier(issuer.issuer, AUDIENCE).verify("opaque-6")


def test_introspection_endpoint_down_is_issuer_unavailable():
    port = free_port()
    auth = ClientSecretBasic("api-1", Secret("s"))
    verifier = TokenVerifier(
        f"http://127.0.0.1:{port}", AUDIENCE,
        introspection=Introspection(auth, endpoint=f"http://127.0.0.1:{port}/introspect"), timeout=0.5,
    )
    with pytest.raises(IssuerUnavailable):
        verifier.verify("opaque-7")


async def test_async_introspection_is_cached(issuer: IssuerServer):
    clock = Clock()
    issuer.introspection["opaque-8"] = active(issuer, clock.now + 60)
    verifier = make_verifier(issuer, clock)
    for _ in range(3):
        assert (await verifier.averify("opaque-8")).client_id == "c-9"
    assert issuer.hits["/introspect"] == 1
    await verifier.aclose()


def test_rfc7662_4_guard_requires_its_aud_in_the_answer(issuer: IssuerServer):
    """Attack: a token issued for another API (or an answer without aud) accepted by this one."""
    clock = Clock()
    answer = active(issuer, clock.now + 300)
    del answer["aud"]
    issuer.introspection["no-aud"] = answer
    issuer.introspection["other-aud"] = active(issuer, clock.now + 300, aud="https://other.example")
    for token in ("no-aud", "other-aud"):
        with pytest.raises(InvalidToken, match="audience"):
            make_verifier(issuer, clock).verify(token)
    # the documented option for a foreign issuer whose answers omit aud
    assert make_verifier(issuer, clock, require_audience=False).verify("no-aud").subject == "user-9"
    with pytest.raises(InvalidToken, match="audience"):
        make_verifier(issuer, clock, require_audience=False).verify("other-aud")


@pytest.mark.parametrize(("token_type", "accepted"), [
    (None, True), ("Bearer", True), ("bearer", True), ("DPoP", True), ("refresh_token", False), ("N_A", False),
    (7, False),
])
def test_rfc7662_2_2_guard_accepts_only_access_token_types(issuer: IssuerServer, token_type, accepted):
    """Attack: a refresh token (introspected as active) presented to an API as if it were an access token."""
    clock = Clock()
    extra = {} if token_type is None else {"token_type": token_type}
    issuer.introspection["typed"] = active(issuer, clock.now + 300, **extra)
    verifier = make_verifier(issuer, clock)
    if accepted:
        assert verifier.verify("typed").subject == "user-9"
    else:
        with pytest.raises(InvalidToken, match="not an access token"):
            verifier.verify("typed")
