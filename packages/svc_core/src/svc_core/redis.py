"""Redis through ``redis.asyncio``, or fakeredis for ``REDIS_URL=memory://``.

Timeouts are short on purpose: a Redis that does not answer turns into a 503 within about a
second instead of a hung request. ``memory://NAME`` shares one fake server per name in-process.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

_MEMORY: dict[str, Any] = {}


def open_redis(url: str, *, timeout: float = 1.0) -> Redis:
    """A client for ``url`` with string responses; no I/O until first use."""
    if url.startswith("memory://"):
        try:
            import fakeredis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "REDIS_URL=memory:// needs the embedded extra: pip install 'svc-core[embedded]'"
            ) from exc
        name = url.removeprefix("memory://") or "default"
        server = _MEMORY.setdefault(name, fakeredis.FakeServer())
        client: Redis = fakeredis.aioredis.FakeRedis(server=server, decode_responses=True)
        return client
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_timeout=False,
        health_check_interval=15,
    )
