"""The compose stack through REAL Kong (``nox -s compose-smoke`` only: it brings the stack up,
sets SVC_SMOKE_GATEWAY_URL to Kong's proxy on :8000, runs this, and takes the stack down).

This is the check that the rendered kong.yml loads and behaves in Kong itself: the local
gateway's tests pin the same behaviour without Kong. It reuses the end-to-end journey's helpers
and runs the journey's main path (register, login, Kong's 401, order, payment, the order paid
through the Redis stream, cache), plus Kong's own headers and a CORS preflight.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from svc_core.testing import eventually
from tests.e2e.test_journey import call, sign_up

GATEWAY = os.environ.get("SVC_SMOKE_GATEWAY_URL", "")
pytestmark = pytest.mark.skipif(not GATEWAY, reason="run by nox -s compose-smoke")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def test_jwks_through_kong(http: aiohttp.ClientSession) -> None:
    status, body, headers = await call(http, "GET", f"{GATEWAY}/auth/jwks.json")
    assert status == 200
    assert [k["alg"] for k in body["keys"]] == ["RS256"]
    assert "kong" in headers.get("Via", "").lower()  # answered through Kong itself


async def test_the_journey_through_kong(http: aiohttp.ClientSession) -> None:
    gw = GATEWAY
    status, body, headers = await call(http, "GET", f"{gw}/customers/me")
    assert (status, body) == (401, {"message": "Unauthorized"})  # Kong's jwt plugin
    _, token = await sign_up(http, gw)
    request_id = f"smoke-{uuid.uuid4().hex}"
    status, me, headers = await call(
        http, "GET", f"{gw}/customers/me", token, headers={"X-Request-ID": request_id}
    )
    assert status == 200, me
    assert headers["X-Request-ID"] == request_id
    assert headers["X-RateLimit-Limit-Minute"] == "100"  # counted in Redis (policy: redis)

    order_body = {
        "currency": "EUR",
        "items": [{"sku": "tea-1", "name": "Green tea", "quantity": 2, "unit_price": 450}],
    }
    status, order, _ = await call(http, "POST", f"{gw}/orders", token, json=order_body)
    assert status == 201, order
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
    status, payment, _ = await call(
        http, "POST", f"{gw}/payments", token,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"order_id": order["id"], "card": card},
    )  # fmt: skip
    assert status == 201, payment

    async def paid() -> bool:
        _, current, _ = await call(http, "GET", f"{gw}/orders/{order['id']}", token)
        return bool(current["status"] == "paid")

    assert await eventually(paid, timeout=30, interval=0.2)
    status, entry, _ = await call(
        http, "PUT", f"{gw}/cache/smoke:{uuid.uuid4().hex}", token, json={"value": 1}
    )
    assert status == 200, entry


async def test_cors_preflight_is_answered_by_kong(http: aiohttp.ClientSession) -> None:
    async with http.options(
        f"{GATEWAY}/orders",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
