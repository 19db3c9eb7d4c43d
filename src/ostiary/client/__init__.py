"""The client toolkit: get, cache and refresh tokens; authenticate to the token endpoint.

``ostiary.client.httpx_auth`` and ``ostiary.client.requests_auth`` hold the HTTP library adapters
(``requests`` is optional and only imported there).
"""

from .auth_methods import (
    ClientAuth,
    ClientSecretBasic,
    ClientSecretJwt,
    ClientSecretPost,
    NoClientAuth,
    PrivateKeyJwt,
)
from .credentials import ClientCredentials
from .discovery import DiscoveryError, metadata_urls
from .env import ConfigError, settings_from_env
from .httpx_auth import TokenAuth, TokenSource
from .loopback import CliLogin, LoginError
from .pkce import Pkce, s256
from .secret import Secret
from .token import Token, TokenError

__all__ = [
    "CliLogin",
    "ClientAuth",
    "ClientCredentials",
    "ClientSecretBasic",
    "ClientSecretJwt",
    "ClientSecretPost",
    "ConfigError",
    "DiscoveryError",
    "LoginError",
    "NoClientAuth",
    "Pkce",
    "PrivateKeyJwt",
    "Secret",
    "Token",
    "TokenAuth",
    "TokenError",
    "TokenSource",
    "metadata_urls",
    "s256",
    "settings_from_env",
]
