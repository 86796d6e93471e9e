"""Kept for imports written before the move: the helper lives in :mod:`svc_core.embedded`."""

from svc_core.embedded import RedisServer, reachable

__all__ = ["RedisServer", "reachable"]
