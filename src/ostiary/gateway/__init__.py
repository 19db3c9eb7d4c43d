"""The API gateway: routes, edge checks with the guard of ``ostiary.resource``, rate limits, proxying, forward-auth.

The ASGI app is ``ostiary.gateway.app.Gateway``; this package itself imports only the configuration, so
the authorization server can read a gateway file (for the developer portal) without the proxy's modules.
Running the gateway needs the server extras (uvicorn; redis for shared rate limits).
"""

from .config import GatewayConfig, GatewayConfigError, Route, load_config, parse_config

__all__ = ["GatewayConfig", "GatewayConfigError", "Route", "load_config", "parse_config"]
