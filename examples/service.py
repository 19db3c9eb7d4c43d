"""A service calling the example API with a cached client-credentials token.

    pip install ostiary
    export OSTIARY_ISSUER=http://127.0.0.1:8000
    export OSTIARY_CLIENT_ID=notes-service
    export OSTIARY_CLIENT_SECRET=...   # from `ostiary client create ... --json` (see README.md)
    export OSTIARY_SCOPE="notes:read notes:write"
    export OSTIARY_RESOURCE=http://127.0.0.1:8001
    python service.py http://127.0.0.1:8001/notes

The token is fetched once, reused for every call, refreshed at 80% of its lifetime, and
refreshed (once) if the API answers 401.
"""

from __future__ import annotations

import logging
import sys

import httpx

from ostiary.client import ClientCredentials, ConfigError, TokenError


def main(url: str, calls: int = 5) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        tokens = ClientCredentials.from_env()
    except ConfigError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    with httpx.Client(auth=tokens.httpx_auth(), timeout=10.0) as api:
        for _ in range(calls):
            try:
                response = api.get(url)
            except TokenError as exc:  # e.g. invalid_client: a wrong id or secret, or another database
                print(f"no token from the server: {exc}", file=sys.stderr)
                return 1
            except httpx.HTTPError as exc:
                print(f"cannot reach {url}: {exc}", file=sys.stderr)
                return 1
            print(response.status_code, response.text)
            if response.status_code != 200:
                print("WWW-Authenticate:", response.headers.get("www-authenticate"), file=sys.stderr)
                return 1
    print(f"{calls} calls, {tokens.request_count} token request(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8001/notes"))
