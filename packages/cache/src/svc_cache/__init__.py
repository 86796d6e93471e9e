"""Cache service: namespaced key-value with TTL on Redis."""

from svc_cache.manifest import create_app, service
from svc_cache.settings import CacheSettings

__all__ = ["CacheSettings", "create_app", "service"]
