"""requests.auth.AuthBase for any token source, retrying once after a 401 (needs ``requests``)."""

from __future__ import annotations

from typing import Any

import requests
from requests.auth import AuthBase

from .httpx_auth import TokenSource

__all__ = ["RequestsTokenAuth"]

_RETRIED = "X-Ostiary-Retried"  # never sent: removed before the retry goes out


class RequestsTokenAuth(AuthBase):
    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def __repr__(self) -> str:
        return f"RequestsTokenAuth({self.source!r})"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.source.get_token()
        r.headers["Authorization"] = f"Bearer {token.access_token}"

        def retry_on_401(response: requests.Response, **kwargs: Any) -> requests.Response:
            if response.status_code != 401 or response.request is not r:
                return response
            self.source.invalidate(token)
            response.content  # noqa: B018 - drain the body so the connection can be reused
            response.close()
            retry = r.copy()
            retry.hooks = {"response": []}
            retry.headers["Authorization"] = f"Bearer {self.source.get_token().access_token}"
            if response.connection is None:
                return response
            new: requests.Response = response.connection.send(retry, **kwargs)
            new.history.append(response)
            new.request = retry
            return new

        r.hooks.setdefault("response", []).append(retry_on_401)
        return r
