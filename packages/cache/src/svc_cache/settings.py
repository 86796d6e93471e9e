"""The cache service's settings: the chassis' for auth (Redis included); none of its own."""

from __future__ import annotations

from svc_core import AuthSettings


class CacheSettings(AuthSettings):
    pass
