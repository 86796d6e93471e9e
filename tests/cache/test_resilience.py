"""Redis unavailable: quick 503s, never a hang or a 500; back to normal once Redis returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from svc_cache.app import CacheSettings, create_app
from svc_core.keys import REVOCATIONS
from svc_core.testing.redis_server import RedisServer
from tests.cache.conftest import assert_problem

pytestmark = pytest.mark.skipif(not RedisServer.available(), reason="needs redis-server")

# Generous: this guards against a hang; it is not a latency assertion.
COMPLETES_WITHIN = 10.0


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


async def answer(call: Any) -> Any:
    return await asyncio.wait_for(call, timeout=COMPLETES_WITHIN)


async def test_redis_down_is_503_then_recovers(aiohttp_client, make_settings, alice, redis_server):
    settings = make_settings(CacheSettings, redis_url=f"{redis_server.url}/0")
    client = await aiohttp_client(create_app(settings))
    assert (await client.put("/cache/k", json={"value": 1}, headers=alice)).status == 200

    redis_server.stop()
    calls = [
        ("GET", "/cache/k", None),
        ("PUT", "/cache/k", {"value": 2}),
        ("DELETE", "/cache/k", None),
        ("POST", "/cache/k/incr", None),
    ]
    for method, path, payload in calls:
        resp = await answer(client.request(method, path, json=payload, headers=alice))
        assert resp.status == 503, (method, path)
        assert_problem(await resp.json(), 503, "dependency_unavailable")
    resp = await answer(client.get("/ready"))
    assert resp.status == 503
    assert (await resp.json())["checks"]["redis"] != "ok"

    # Once the revocation feed has noticed, the token check itself asks Redis: 503 there too.
    revocations = client.server.app[REVOCATIONS]
    deadline = time.monotonic() + COMPLETES_WITHIN
    while revocations.synced:
        assert time.monotonic() < deadline, "the revocation feed never noticed Redis was gone"
        await asyncio.sleep(0.05)
    resp = await answer(client.get("/cache/k", headers=alice))
    assert resp.status == 503
    assert_problem(await resp.json(), 503, "dependency_unavailable")

    redis_server.start()  # the same port; nothing was persisted
    deadline = time.monotonic() + COMPLETES_WITHIN
    while (resp := await client.put("/cache/k", json={"value": 3}, headers=alice)).status != 200:
        assert resp.status == 503
        assert time.monotonic() < deadline, "the service did not recover"
        await asyncio.sleep(0.05)
    resp = await client.get("/cache/k", headers=alice)
    assert await resp.json() == {"key": "k", "value": 3, "ttl_seconds": None}
    # The restarted Redis has no scripts cached: incr must load its script again.
    resp = await client.post("/cache/k/incr", headers=alice)
    assert resp.status == 200
    assert (await resp.json())["value"] == 4
    assert (await client.get("/ready")).status == 200
