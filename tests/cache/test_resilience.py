"""Redis unavailable: quick 503s, never a hang or a 500; back to normal once Redis returns."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from svc_cache import CacheSettings, create_app
from svc_core.embedded import RedisServer
from svc_core.keys import REVOCATIONS
from tests.cache.conftest import assert_problem

pytestmark = pytest.mark.skipif(not RedisServer.available(), reason="needs redis-server")

# Generous: this guards against a hang; it is not a latency assertion.
COMPLETES_WITHIN = 10.0


async def answer(call: Any) -> Any:
    return await asyncio.wait_for(call, timeout=COMPLETES_WITHIN)


async def test_redis_down_is_503_then_recovers(
    aiohttp_client, make_settings, auth_header, redis_server
):
    settings = make_settings(CacheSettings, redis_url=f"{redis_server.url}/0")
    client = await aiohttp_client(create_app(settings))
    # Minted once the service runs: it met an empty Redis, so it refuses tokens issued in
    # earlier seconds (svc_core.auth.revocations).
    alice = auth_header(sub="cust-alice", username="alice")
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
    # Every revocation was lost with the data, so tokens issued before the loss are refused
    # from now on (api.md, POST /auth/logout): 503 until Redis answers, then 401, never 200.
    deadline = time.monotonic() + COMPLETES_WITHIN
    while (resp := await client.put("/cache/k", json={"value": 3}, headers=alice)).status != 401:
        assert resp.status == 503
        assert time.monotonic() < deadline, "the service did not recover"
        await asyncio.sleep(0.05)
    assert_problem(await resp.json(), 401, "session_revoked")
    # A token issued after the loss was noticed (iat counts whole seconds) works as before.
    await asyncio.sleep(max(0.0, int(revocations.not_before) + 1 - time.time()))
    alice = auth_header(sub="cust-alice", username="alice")
    resp = await client.put("/cache/k", json={"value": 3}, headers=alice)
    assert resp.status == 200
    resp = await client.get("/cache/k", headers=alice)
    assert await resp.json() == {"key": "k", "value": 3, "ttl_seconds": None}
    # The restarted Redis has no scripts cached: incr must load its script again.
    resp = await client.post("/cache/k/incr", headers=alice)
    assert resp.status == 200
    assert (await resp.json())["value"] == 4
    assert (await client.get("/ready")).status == 200
