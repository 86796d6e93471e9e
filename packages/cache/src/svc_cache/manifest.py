"""What the cache service is: namespaced key-value entries with TTL, on Redis only."""

from __future__ import annotations

from svc_cache.parts import PARTS
from svc_cache.settings import CacheSettings
from svc_cache.views import routes
from svc_core import Auth, Redis, Service

service = Service(
    name="cache",
    port=3001,
    settings=CacheSettings,
    routes=routes,
    uses=[Redis(), Auth()],
    parts=PARTS,
)
create_app = service.create_app
