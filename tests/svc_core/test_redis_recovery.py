"""Redis restarts: pooled connections recover without a single 503; Redis down is a quick 503.

Each test starts its own redis-server (never the shared one) and restarts or pauses it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from svc_core.embedded import RedisServer
from svc_core.redis import open_redis
from tests.svc_core.toy import ToySettings, create_toy_app

pytestmark = pytest.mark.skipif(not RedisServer.available(), reason="needs redis-server")

# Guards against a hang; not a latency assertion.
COMPLETES_WITHIN = 5.0
PARALLEL = 20  # enough concurrent commands to fill the pool with that many connections


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


async def test_pooled_connections_survive_a_restart(redis_server):
    redis = open_redis(f"{redis_server.url}/0")
    try:
        await asyncio.gather(*(redis.incr("warm") for _ in range(PARALLEL)))
        assert len(redis.connection_pool._available_connections) >= 2  # a pool to go stale
        redis_server.stop()
        redis_server.start()  # the same port, empty
        results = await asyncio.gather(
            *(redis.incr("hits") for _ in range(50)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        assert int(await redis.get("hits")) == 50  # each applied exactly once
    finally:
        await redis.aclose()


async def test_requests_get_no_503_once_redis_is_back(aiohttp_client, make_settings, redis_server):
    app = create_toy_app(make_settings(ToySettings, redis_url=f"{redis_server.url}/0"))
    client = await aiohttp_client(app)
    statuses = await asyncio.gather(*(client.post("/public/hits") for _ in range(PARALLEL)))
    assert {r.status for r in statuses} == {200}

    redis_server.stop()
    resp = await asyncio.wait_for(client.post("/public/hits"), COMPLETES_WITHIN)
    assert resp.status == 503
    assert (await resp.json())["code"] == "dependency_unavailable"

    redis_server.start()
    seen = []
    for _ in range(5):  # 50 requests, 10 at a time
        batch = await asyncio.gather(*(client.post("/public/hits") for _ in range(10)))
        seen += [r.status for r in batch]
    assert seen == [200] * 50
    resp = await client.post("/public/hits")
    assert (await resp.json())["hits"] == 51  # none double-applied


async def test_a_hung_redis_is_a_503_not_a_hang(aiohttp_client, make_settings, redis_server):
    """A Redis that accepts but never answers: the 1 s socket timeout, not retried."""
    app = create_toy_app(make_settings(ToySettings, redis_url=f"{redis_server.url}/0"))
    client = await aiohttp_client(app)
    assert (await client.post("/public/hits")).status == 200
    assert redis_server.proc is not None
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        resp = await asyncio.wait_for(client.post("/public/hits"), COMPLETES_WITHIN)
        assert resp.status == 503
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    assert (await client.post("/public/hits")).status == 200


def test_what_the_client_retries():
    """Connection errors are retried (the command cannot have run on a server that is gone);
    timeouts are not (it may have run, and retrying would break the ~1 s bound)."""
    redis = open_redis("redis://127.0.0.1:1/0")
    kwargs = redis.connection_pool.connection_kwargs
    retry = kwargs["retry"]
    assert retry.get_retries() >= 2
    assert RedisConnectionError in retry._supported_errors
    assert RedisTimeoutError not in retry._supported_errors
    assert not kwargs.get("retry_on_timeout")
    assert kwargs["socket_keepalive"] is True
    assert 0 < kwargs["health_check_interval"] <= 5
