"""Ostiary: OAuth 2.1 / OpenID Connect authorization server, guard, client toolkit and JWT tooling."""

__version__ = "0.1.0"
