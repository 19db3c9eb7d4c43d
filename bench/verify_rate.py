"""Guard verification rate vs raw ``cryptography``, PyJWT, joserfc and Authlib, in one run.

    python bench/verify_rate.py [--seconds 1.0] [--rounds 3]

Re-executes itself pinned to one CPU with ``taskset`` when available. Each measurement loop is
bounded in time; the best of ``--rounds`` is reported. Run by hand, never as a test.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ostiary import jwt as ojwt
from ostiary.keys import SigningKey, jwks_document, key_set
from ostiary.resource import TokenVerifier
from ostiary.resource.compact import b64url_decode

ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"


def rate(fn: Callable[[], object], seconds: float, rounds: int) -> float:
    """Best operations per second over ``rounds`` loops of about ``seconds`` each."""
    best = 0.0
    for _ in range(rounds):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(50):
                fn()
            n += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def make_token(key: SigningKey) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "client_id": "client-1", "iat": now,
        "exp": now + 3600, "jti": uuid.uuid4().hex, "scope": "read write",
    }
    return ojwt.sign(claims, key, typ="at+jwt")


def public_from_jwks(key: SigningKey) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The public key as a resource server gets it: from the published JWK's numbers, not the private key."""
    jwk = key.public_jwk()
    if jwk["kty"] == "EC":
        x = int.from_bytes(b64url_decode(str(jwk["x"])), "big")
        y = int.from_bytes(b64url_decode(str(jwk["y"])), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    n = int.from_bytes(b64url_decode(str(jwk["n"])), "big")
    e = int.from_bytes(b64url_decode(str(jwk["e"])), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def raw_verifier(key: SigningKey, token: str) -> Callable[[], object]:
    head, payload, sig = token.split(".")
    signing_input = f"{head}.{payload}".encode()
    signature = b64url_decode(sig)
    public = public_from_jwks(key)
    if key.alg == "ES256":
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        algorithm = ec.ECDSA(hashes.SHA256())
        return lambda: public.verify(der, signing_input, algorithm)  # type: ignore[call-arg,arg-type]
    pad = padding.PKCS1v15()
    digest = hashes.SHA256()
    return lambda: public.verify(signature, signing_input, pad, digest)  # type: ignore[call-arg,arg-type]


def guard_verifier(keys: list[SigningKey], cache: int = 4096) -> TokenVerifier:
    doc = jwks_document(keys)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/.well-known/"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
        return httpx.Response(200, json=doc)

    return TokenVerifier(
        ISSUER, AUDIENCE, verified_cache_size=cache, http=httpx.Client(transport=httpx.MockTransport(handler))
    )


def pyjwt_verifier(key: SigningKey, token: str) -> Callable[[], object]:
    import jwt as pyjwt

    public = public_from_jwks(key)
    return lambda: pyjwt.decode(
        token, public, algorithms=[key.alg], audience=AUDIENCE, issuer=ISSUER,  # type: ignore[arg-type]
        options={"require": ["exp", "iat", "sub", "jti"]},
    )


def authlib_verifier(keys: list[SigningKey], token: str) -> Callable[[], object]:
    from authlib.oauth2.rfc9068 import JWTBearerTokenValidator

    doc = jwks_document(keys)

    class Validator(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> dict[str, object]:
            return doc

    validator = Validator(issuer=ISSUER, resource_server=AUDIENCE)

    def run() -> object:
        claims = validator.authenticate_token(token)
        validator.validate_token(claims, scopes=["read"], request=None)
        return claims

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    warnings.showwarning = lambda *a, **k: None  # Authlib re-enables its deprecation notice on every call
    if shutil.which("taskset") and not os.environ.get("OSTIARY_BENCH_PINNED"):
        os.environ["OSTIARY_BENCH_PINNED"] = "1"
        os.execvp("taskset", ["taskset", "-c", "0", sys.executable, *sys.argv])

    es, rs = SigningKey.generate("ES256"), SigningKey.generate("RS256")
    guard = guard_verifier([es, rs])
    cold = guard_verifier([es, rs], cache=0)  # every call checks the signature, as for a new token
    pinned = bool(os.environ.get("OSTIARY_BENCH_PINNED"))
    print(f"# Python {platform.python_version()} on {platform.machine()}, pinned to one CPU: {pinned}")
    print(f"{'alg':6} {'verifier':34} {'verifications/s':>16} {'vs raw':>8}")
    for key in (es, rs):
        token = make_token(key)
        guard.verify(token)  # warm the JWKS caches
        cold.verify(token)
        candidates: list[tuple[str, Callable[[], object]]] = [
            ("raw cryptography verify()", raw_verifier(key, token)),
            ("ostiary guard, each call verified", functools.partial(cold.verify, token)),
            ("ostiary guard, repeated token", functools.partial(guard.verify, token)),
            ("ostiary.jwt.verify (joserfc)", functools.partial(
                ojwt.verify, token, key_set([es, rs]), algorithms=[key.alg], issuer=ISSUER, audience=AUDIENCE,
                typ="at+jwt")),
            ("PyJWT decode", pyjwt_verifier(key, token)),
            ("Authlib rfc9068 validator", authlib_verifier([es, rs], token)),
        ]
        for _, fn in candidates:
            fn()  # fail loudly before timing if a verifier refuses the token
        # Interleave: every round times every candidate once, so load changes on a shared machine
        # hit them all alike; the best round of each is kept.
        best = [0.0] * len(candidates)
        for _ in range(args.rounds):
            for i, (_, fn) in enumerate(candidates):
                best[i] = max(best[i], rate(fn, args.seconds, 1))
        for (name, _), r in zip(candidates, best, strict=True):
            print(f"{key.alg:6} {name:34} {r:16,.0f} {r / best[0]:8.1%}", flush=True)


if __name__ == "__main__":
    main()
