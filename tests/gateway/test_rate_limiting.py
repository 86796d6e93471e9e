"""rate-limiting as Kong 3.9.1 runs it: K:kong/plugins/rate-limiting/handler.lua,
policies/init.lua (redis policy) and kong/tools/timestamp.lua (fixed windows).

kong.yml: a global instance (100/minute, limit_by header Authorization) for the protected
routes, and route-level instances (100/minute, limit_by ip) on the public routes.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from tests.gateway.conftest import pin_clock

# 30 s into the current minute: every request of a test falls in one window, Reset = 30.
NOW = (int(time.time()) // 60) * 60 + 30


async def spend(client: TestClient[Any, Any], n: int, path: str = "/orders", **kw: Any) -> Any:
    response = None
    for _ in range(n):
        response = await client.get(path, **kw)
        assert response.status == 200, await response.text()
    return response


async def test_counted_response_headers(gateway: TestClient[Any, Any], auth_header: Any) -> None:
    """handler.lua access/header_filter: X-RateLimit-Limit-Minute / -Remaining-Minute, and
    RateLimit-Limit / -Remaining / -Reset for the most restrictive window (Reset in seconds
    left in the window, at least 1). Remaining already counts this request."""
    pin_clock(gateway, NOW)
    headers = auth_header()
    first = await gateway.get("/orders", headers=headers)
    assert first.status == 200
    assert first.headers["X-RateLimit-Limit-Minute"] == "100"
    assert first.headers["X-RateLimit-Remaining-Minute"] == "99"
    assert first.headers["RateLimit-Limit"] == "100"
    assert first.headers["RateLimit-Remaining"] == "99"
    assert first.headers["RateLimit-Reset"] == "30"
    second = await gateway.get("/orders", headers=headers)
    assert second.headers["X-RateLimit-Remaining-Minute"] == "98"
    assert "Retry-After" not in second.headers


async def test_limit_reached_is_429_with_retry_after(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    """handler.lua: usage >= limit -> kong.response.error(429, "API rate limit exceeded") with
    the counters at 0 and Retry-After = RateLimit-Reset; the body carries Kong's request_id
    (3.5+ error template, K:kong/tools/http.lua), not the X-Request-ID."""
    pin_clock(gateway, NOW)
    headers = auth_header()
    last = await spend(gateway, 100, headers=headers)
    assert last.headers["X-RateLimit-Remaining-Minute"] == "0"
    refused = await gateway.get("/orders", headers=headers | {"X-Request-ID": "mine"})
    assert refused.status == 429
    assert refused.headers["Content-Type"] == "application/json; charset=utf-8"
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["RateLimit-Reset"] == "30"
    assert refused.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["X-Request-ID"] == "mine"
    body = json.loads(await refused.read())
    assert body["message"] == "API rate limit exceeded"
    assert set(body) == {"message", "request_id"}
    assert body["request_id"] != "mine"


async def test_one_tokens_exhausted_budget_leaves_another_untouched(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    """limit_by header Authorization: each access token has its own bucket (never one shared
    consumer bucket), across every protected route (a global instance counts them together)."""
    pin_clock(gateway, NOW)
    alice, bob = auth_header(sub="alice"), auth_header(sub="bob")
    await spend(gateway, 50, "/orders", headers=alice)
    await spend(gateway, 50, "/cache/k", headers=alice)
    assert (await gateway.get("/payments", headers=alice)).status == 429
    other = await gateway.get("/orders", headers=bob)
    assert other.status == 200
    assert other.headers["X-RateLimit-Remaining-Minute"] == "99"


async def test_counters_live_in_the_configured_redis_in_fixed_windows(
    gateway: TestClient[Any, Any], auth_header: Any, redis_url: str
) -> None:
    """policies/init.lua redis: key ratelimit:<route>:<service>:<identifier>:<window start
    ms>:<period>, expiring with the window; a new minute is a new bucket."""
    pin_clock(gateway, NOW)
    headers = auth_header()
    await spend(gateway, 3, headers=headers)
    if not redis_url.startswith("memory://"):
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        empty = "00000000-0000-0000-0000-000000000000"
        key = f"ratelimit:{empty}:{empty}:{headers['Authorization']}:{(NOW - 30) * 1000}:minute"
        try:
            assert await client.get(key) == "3"
            assert 0 < await client.ttl(key) <= 60
        finally:
            await client.aclose()
    pin_clock(gateway, NOW + 60)
    fresh = await gateway.get("/orders", headers=headers)
    assert fresh.headers["X-RateLimit-Remaining-Minute"] == "99"


async def test_public_routes_count_per_ip_whatever_the_authorization_header(
    gateway: TestClient[Any, Any],
) -> None:
    """limit_by ip on the public routes: made-up Authorization headers do not buy new budgets
    (shared/kong.md, pitfall); all three POST /auth paths share one route and one bucket."""
    pin_clock(gateway, NOW)
    paths = ["/auth/login", "/auth/register", "/auth/refresh"]
    for i in range(100):
        junk = {"Authorization": f"Bearer {uuid.uuid4().hex}"}
        response = await gateway.post(paths[i % 3], json={}, headers=junk)
        assert response.status == 200
        assert response.headers["X-RateLimit-Remaining-Minute"] == str(99 - i)
    refused = await gateway.post(
        "/auth/login", json={}, headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}
    )
    assert refused.status == 429
    assert json.loads(await refused.read())["message"] == "API rate limit exceeded"
    # The IP's public budget is separate from any token's protected budget.
    assert (await gateway.get("/auth/jwks.json")).status == 200


async def test_rejected_requests_are_not_counted(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    """jwt (1450) runs before rate-limiting (910): a refused token never reaches the counter,
    and a preflight is answered by cors (2000) before either."""
    pin_clock(gateway, NOW)
    headers = auth_header()
    for _ in range(5):
        bad = await gateway.get("/orders", headers={"Authorization": "Bearer nope.nope.nope"})
        assert bad.status == 401
        assert "X-RateLimit-Limit-Minute" not in bad.headers
        preflight = await gateway.options(
            "/orders",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"}
            | headers,
        )
        assert preflight.status == 200
        assert "X-RateLimit-Limit-Minute" not in preflight.headers
    counted = await gateway.get("/orders", headers=headers)
    assert counted.headers["X-RateLimit-Remaining-Minute"] == "99"
