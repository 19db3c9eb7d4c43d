"""The web layer: Starlette routes, error mapping, pages."""
