"""Storage: Protocols the core needs, a SQLAlchemy implementation, Redis for ephemeral state."""

from .protocols import (
    Client,
    ClientExists,
    ClientStore,
    KeyStore,
    ReplayCache,
    StateStore,
    TokenRecord,
    TokenStore,
    TrustLevel,
)

__all__ = [
    "Client",
    "ClientExists",
    "ClientStore",
    "KeyStore",
    "ReplayCache",
    "StateStore",
    "TokenRecord",
    "TokenStore",
    "TrustLevel",
]
