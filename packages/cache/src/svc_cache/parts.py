"""The cache service's parts, built once at startup; handlers reach them through ``PARTS``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from svc_cache.repository import CacheStore
from svc_cache.settings import CacheSettings
from svc_core import Parts, keys


@dataclasses.dataclass(frozen=True)
class CacheParts:
    settings: CacheSettings
    store: CacheStore


async def build(app: web.Application, settings: CacheSettings) -> AsyncIterator[CacheParts]:
    yield CacheParts(settings=settings, store=CacheStore(app[keys.REDIS]))


PARTS = Parts(build)
