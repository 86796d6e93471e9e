"""The cache service: namespaced key-value entries with TTL, on Redis only (no MongoDB)."""

from __future__ import annotations

from typing import ClassVar

from aiohttp import web

from svc_cache.repository import store_context
from svc_cache.views import routes
from svc_core import Settings
from svc_core import create_app as create_service


class CacheSettings(Settings):
    service_name: ClassVar[str] = "cache"
    default_port: ClassVar[int] = 3001


def create_app(settings: CacheSettings | None = None) -> web.Application:
    return create_service(
        settings or CacheSettings.from_env(),
        routes,
        title="Cache service",
        redis=True,
        contexts=[store_context],
    )
