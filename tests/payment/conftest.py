"""Fixtures for the payment service: a stub order service, a counting provider, app starters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from svc_core import keys
from svc_payment import PaymentSettings, create_app
from svc_payment.providers import PROVIDERS, Card, ChargeResult, SandboxProvider

VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"


def card(number: str = VISA, **overrides: Any) -> dict[str, Any]:
    return {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123", **overrides}


class CountingProvider(SandboxProvider):
    """The sandbox, counting calls; ``gate`` (when set) holds every charge until it opens."""

    def __init__(self) -> None:
        super().__init__()
        self.charge_calls = 0
        self.refund_calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.fail_refunds = False

    async def charge(self, amount: int, currency: str, card: Card) -> ChargeResult:
        self.charge_calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().charge(amount, currency, card)

    async def refund(self, reference: str) -> None:
        if self.fail_refunds:
            raise ConnectionError("provider down")
        self.refund_calls.append(reference)
        await super().refund(reference)


class OrderStub:
    """Serves ``GET /orders/{id}`` from a dict, per customer, as the order service would."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, str]] = []
        self.broken = False
        self.url = ""

    def add(
        self, customer_id: str, *, total: int = 1999, currency: str = "EUR", status: str = "pending"
    ) -> dict[str, Any]:
        order = {
            "id": uuid.uuid4().hex,
            "customer_id": customer_id,
            "status": status,
            "currency": currency,
            "items": [{"sku": "sku-1", "name": "Thing", "quantity": 1, "unit_price": total}],
            "total": total,
            "created_at": "2026-11-25T04:15:00.123Z",
            "updated_at": "2026-11-25T04:15:00.123Z",
        }
        self.orders[order["id"]] = order
        return order

    async def get_order(self, request: web.Request) -> web.Response:
        self.calls.append(dict(request.headers))
        if self.broken:
            return web.json_response({"status": 503}, status=503)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        sub = jwt.decode(token, options={"verify_signature": False})["sub"]
        order = self.orders.get(request.match_info["id"])
        if order is None or order["customer_id"] != sub:
            return web.json_response({"status": 404, "code": "not_found"}, status=404)
        return web.json_response(order)


@pytest.fixture
async def order_stub(aiohttp_server: Any) -> OrderStub:
    stub = OrderStub()
    app = web.Application()
    app.router.add_get("/orders/{id}", stub.get_order)
    server = await aiohttp_server(app)
    stub.url = str(server.make_url("")).rstrip("/")
    return stub


#: the name the test's provider is registered under (``PAYMENT_PROVIDER``)
COUNTING = "counting"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> CountingProvider:
    """The provider of every payment app the test starts: registered for the test only, and
    named by the settings ``start_payment`` makes."""
    counting = CountingProvider()
    monkeypatch.setitem(PROVIDERS, COUNTING, lambda: counting)
    return counting


@pytest.fixture
def mongo_url() -> str:
    """One in-memory database for the test, shared by every app it starts."""
    return f"memory://payment-test-{uuid.uuid4().hex}"


StartPayment = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def start_payment(
    aiohttp_client: Any,
    make_settings: Callable[..., Any],
    order_stub: OrderStub,
    provider: CountingProvider,
    mongo_url: str,
) -> StartPayment:
    async def start(**overrides: Any) -> TestClient[Any, Any]:
        values: dict[str, Any] = {
            "order_service_url": order_stub.url,
            "mongo_url": mongo_url,
            "outbox_poll_seconds": 0.05,
            "payment_provider": COUNTING,
        }
        values.update(overrides)
        settings = make_settings(PaymentSettings, **values)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
        return client

    return start


@pytest.fixture
async def client(start_payment: StartPayment) -> TestClient[Any, Any]:
    return await start_payment()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


class Customer:
    """A customer id and headers; ``pay`` posts a payment with a fresh or given key."""

    def __init__(self, client: TestClient[Any, Any], sub: str, token: str) -> None:
        self.client = client
        self.sub = sub
        self.auth = {"Authorization": f"Bearer {token}"}

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {**self.auth, "Idempotency-Key": key or uuid.uuid4().hex}

    async def pay(
        self, order_id: str, number: str = VISA, *, key: str | None = None, **card_fields: Any
    ) -> Any:
        return await self.client.post(
            "/payments",
            json={"order_id": order_id, "card": card(number, **card_fields)},
            headers=self.headers(key),
        )


@pytest.fixture
def customer_for(make_token: Callable[..., str]) -> Callable[[TestClient[Any, Any]], Customer]:
    def make(client: TestClient[Any, Any], sub: str | None = None) -> Customer:
        sub = sub or f"cust-{uuid.uuid4().hex[:12]}"
        return Customer(client, sub, make_token(sub=sub))

    return make


@pytest.fixture
def alice(client: TestClient[Any, Any], customer_for: Callable[..., Customer]) -> Customer:
    return customer_for(client)


@pytest.fixture
def bob(client: TestClient[Any, Any], customer_for: Callable[..., Customer]) -> Customer:
    return customer_for(client)


async def stream_events(redis: aioredis.Redis, stream: str) -> list[dict[str, Any]]:
    import json

    entries = await redis.xrange(stream)
    return [
        {"type": f["type"], "event_id": f["event_id"], "data": json.loads(f["data"])}
        for _id, f in entries
    ]


def db(client: TestClient[Any, Any]) -> Any:
    """The payment app's MongoDB database, to inspect what was stored."""
    return client.app[keys.MONGO_DB]
