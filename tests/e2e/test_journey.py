"""A client's journey through the gateway, on real sockets, against every implemented service."""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp

from svc_core.testing import eventually, random_email, random_username
from svc_devstack.stack import Stack
from svc_gateway.plugins.rate_limiting import RateLimiting

PASSWORD = "correct horse battery"


async def call(
    http: aiohttp.ClientSession, method: str, url: str, token: str | None = None, **kw: Any
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with http.request(method, url, headers=headers, **kw) as response:
        body = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, body, response.headers


async def sign_up(http: aiohttp.ClientSession, gw: str) -> tuple[str, str]:
    username = random_username()
    status, body, _ = await call(
        http, "POST", f"{gw}/auth/register",
        json={"username": username, "email": random_email(), "password": PASSWORD},
    )  # fmt: skip
    assert status == 201, body
    return username, await log_in(http, gw, username)


async def log_in(http: aiohttp.ClientSession, gw: str, username: str) -> str:
    status, body, _ = await call(
        http, "POST", f"{gw}/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    token: str = body["access_token"]
    return token


async def test_a_customers_journey(
    stack: Stack, gateway_url: str, http: aiohttp.ClientSession
) -> None:
    gw = gateway_url
    username, token = await sign_up(http, gw)

    # The gateway refuses a missing token before any service sees it (Kong's body).
    status, body, headers = await call(http, "GET", f"{gw}/customers/me")
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert headers["WWW-Authenticate"] == "Bearer"

    request_id = f"journey-{uuid.uuid4().hex}"
    status, me, headers = await call(
        http, "GET", f"{gw}/customers/me", token, headers={"X-Request-ID": request_id}
    )
    assert status == 200
    assert me["username"] == username
    assert headers["X-Request-ID"] == request_id
    assert headers["X-RateLimit-Limit-Minute"] == "100"

    order_body = {
        "currency": "EUR",
        "items": [{"sku": "tea-1", "name": "Green tea", "quantity": 2, "unit_price": 450}],
    }
    status, order, _ = await call(http, "POST", f"{gw}/orders", token, json=order_body)
    assert status == 201, order
    assert (order["status"], order["total"], order["customer_id"]) == ("pending", 900, me["id"])

    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    status, payment, _ = await call(
        http, "POST", f"{gw}/payments", token,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"order_id": order["id"], "card": card},
    )  # fmt: skip
    assert status == 201, payment
    assert payment["status"] == "succeeded"
    assert payment["amount"] == 900
    assert payment["card"] == {"brand": "visa", "last4": "4242"}

    async def order_status(expected: str) -> bool:
        _, current, _ = await call(http, "GET", f"{gw}/orders/{order['id']}", token)
        return bool(current["status"] == expected)

    assert await eventually(lambda: order_status("paid"), timeout=2.0, interval=0.05)

    status, refunded, _ = await call(http, "POST", f"{gw}/payments/{payment['id']}/refund", token)
    assert status == 200, refunded
    assert refunded["status"] == "refunded"
    assert await eventually(lambda: order_status("refunded"), timeout=2.0, interval=0.05)

    status, entry, _ = await call(
        http, "PUT", f"{gw}/cache/journey:greeting", token, json={"value": {"hi": [1, None]}}
    )
    assert status == 200, entry
    status, entry, _ = await call(http, "GET", f"{gw}/cache/journey:greeting", token)
    assert (status, entry["value"], entry["ttl_seconds"]) == (200, {"hi": [1, None]}, None)

    # Logout: within a second every service refuses the session's token, with the service's
    # own problem (the gateway still accepts the signature).
    status, _, _ = await call(http, "POST", f"{gw}/auth/logout", token)
    assert status == 204

    async def refused() -> Any:
        status, problem, _ = await call(http, "GET", f"{gw}/orders", token)
        return problem if status == 401 else None

    problem = await eventually(refused, timeout=1.0, interval=0.05)
    assert problem is not None
    assert problem["code"] == "session_revoked"
    assert problem["status"] == 401


async def test_rate_limit_is_per_access_token(
    stack: Stack, gateway_url: str, http: aiohttp.ClientSession
) -> None:
    """100 requests per minute per token: the 101st is Kong's 429, another customer is not
    affected. The limiter's clock is pinned inside one window so the test never straddles a
    minute boundary."""
    assert stack.gateway is not None
    pinned = (int(time.time()) // 60) * 60 + 30
    for plugin in stack.gateway._instances.values():
        if isinstance(plugin, RateLimiting):
            plugin.clock = lambda: pinned
    gw = gateway_url
    _, alice = await sign_up(http, gw)
    _, bob = await sign_up(http, gw)
    for i in range(100):
        status, _, headers = await call(http, "GET", f"{gw}/cache/k{i % 7}", alice)
        assert status == 404  # counted: the cache service answered
        assert headers["X-RateLimit-Remaining-Minute"] == str(99 - i)
    status, body, headers = await call(http, "GET", f"{gw}/customers/me", alice)
    assert status == 429
    assert body["message"] == "API rate limit exceeded"
    assert "status" not in body  # the gateway's shape, not a service problem
    assert headers["Retry-After"] == "30"
    status, _, headers = await call(http, "GET", f"{gw}/customers/me", bob)
    assert status == 200
    assert headers["X-RateLimit-Remaining-Minute"] == "99"
