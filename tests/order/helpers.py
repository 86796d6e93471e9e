"""Helpers for the order service's tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp.test_utils import TestClient

from svc_core import EventBus

T = TypeVar("T")

ITEMS = [
    {"sku": "SKU-1", "name": "Widget", "quantity": 2, "unit_price": 1999},
    {"sku": "sku_2.b", "name": "Gadget", "quantity": 1, "unit_price": 500},
]
ITEMS_TOTAL = 2 * 1999 + 500


async def create_order(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"currency": "EUR", "items": ITEMS, **body}
    resp = await client.post("/orders", json=payload, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def get_order(client: TestClient, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    resp = await client.get(f"/orders/{order_id}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, timeout: float = 5.0
) -> T:
    """Poll ``probe`` until ``accept`` holds; at the deadline, fail showing the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.02)


async def publish_payment(
    bus: EventBus,
    type: str,
    order: dict[str, Any],
    *,
    payment_id: str,
    amount: int | None = None,
    currency: str | None = None,
    customer_id: str | None = None,
    order_updated_at: str | None = None,
) -> str:
    """Publish a payment event as the payment service does (the fixed contract).

    ``order_updated_at`` (the version of the order that was charged) is left out unless given,
    as an older producer would.
    """
    data = {
        "payment_id": payment_id,
        "order_id": order["id"],
        "customer_id": customer_id or order["customer_id"],
        "amount": order["total"] if amount is None else amount,
        "currency": currency or order["currency"],
    }
    if order_updated_at is not None:
        data["order_updated_at"] = order_updated_at
    return await bus.publish("events:payments", type, data, event_id=f"{payment_id}:{type}")


async def order_events(bus: EventBus) -> list[dict[str, Any]]:
    """What the order service published on ``events:orders``, decoded."""
    import json

    entries = await bus.redis.xrange("events:orders")
    return [
        {"type": f["type"], "event_id": f["event_id"], "data": json.loads(f["data"])}
        for _id, f in entries
    ]


async def consumer_caught_up(bus: EventBus) -> bool:
    """True when group ``order`` has read every entry of events:payments and acked them all."""
    try:
        groups = await bus.redis.xinfo_groups("events:payments")
    except Exception:
        return False
    for group in groups:
        if group["name"] == "order":
            info = await bus.redis.xinfo_stream("events:payments")
            return group["pending"] == 0 and group["last-delivered-id"] == info["last-generated-id"]
    return False
