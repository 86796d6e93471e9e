"""Redis through ``redis.asyncio``, or fakeredis for ``REDIS_URL=memory://``.

Timeouts are short on purpose: a Redis that does not answer turns into a 503 within about a
second instead of a hung request. A Redis that restarted is recovered from transparently: a
command that fails with a connection error (a pooled connection to the old server) is retried
on a fresh connection, with a short backoff, and idle connections are PINGed before reuse.

What is retried: every command, pipeline and script, but only after a *connection* error, never
after a timeout. A connection error means the server closed or refused the connection; the one
case where the command may still have run is a server that executed it and died before
answering, and then its data died with it (or, with persistence, the command is applied twice):
the commands where that would matter are written to be safe to repeat (``revoke_session``, the
revocation check script, the customer service's refresh-token rotation). ``memory://NAME``
shares one fake server per name in-process.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

RETRIES = 3  # after the first try; 0.02 + 0.04 + 0.08 s of backoff at most
HEALTH_CHECK_INTERVAL = 2  # seconds idle after which a connection is PINGed before use

_MEMORY: dict[str, Any] = {}


def memory_server(url: str) -> Any:
    """The in-process fake server behind ``memory://NAME`` (one per name)."""
    import fakeredis

    name = url.removeprefix("memory://") or "default"
    return _MEMORY.setdefault(name, fakeredis.FakeServer())


def open_redis(url: str, *, timeout: float = 1.0, **options: Any) -> Redis:
    """A client for ``url`` with string responses; no I/O until first use.

    ``options`` go to redis-py as they are: ``password`` (when the URL has none; a URL's own
    ``user:password@`` wins), and for a ``rediss://`` URL ``ssl_ca_certs``, ``ssl_certfile``,
    ``ssl_keyfile``, ``ssl_cert_reqs`` (RedisSettings.redis_options builds them)."""
    if url.startswith("memory://"):
        try:
            import fakeredis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "REDIS_URL=memory:// needs the embedded extra: pip install 'svc-core[embedded]'"
            ) from exc
        client: Redis = fakeredis.aioredis.FakeRedis(
            server=memory_server(url), decode_responses=True
        )
        return client
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        socket_keepalive=True,
        # Connection errors only: a pooled connection whose server went away fails when it is
        # next used, before the new server saw the command, so one more try on a fresh
        # connection is safe. A timeout is never retried: the command may have run (an INCR,
        # an XADD would apply twice), and retrying would stretch the ~1 s bound on a hung Redis.
        retry=Retry(
            ExponentialBackoff(cap=0.2, base=0.02),
            RETRIES,
            supported_errors=(RedisConnectionError,),
        ),
        retry_on_timeout=False,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        **options,
    )
