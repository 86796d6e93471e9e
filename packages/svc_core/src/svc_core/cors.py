"""CORS for a service reached without the gateway (``CORS_ORIGINS``). Behind Kong, Kong's cors
plugin answers and the services' CORS stays off, so headers are never doubled."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    "If-None-Match",
    "Range",
)
CORS_EXPOSE_HEADERS = (
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "ETag",
    "Content-Disposition",
    "Content-Range",
    "Idempotent-Replayed",
)
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def setup_cors(app: web.Application, origins: Sequence[str]) -> None:
    """CORS for a service reached without the gateway (behind Kong, Kong's cors plugin does it)."""
    import aiohttp_cors

    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=False,
        expose_headers=CORS_EXPOSE_HEADERS,
        allow_headers=CORS_ALLOW_HEADERS,
        allow_methods=CORS_METHODS,
        max_age=3600,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):
        if route.method != "HEAD":
            cors.add(route)
