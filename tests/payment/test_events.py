"""The outbox relay and the order service's events."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from svc_core.contracts import ORDERS_STREAM, PAYMENTS_STREAM
from svc_core.testing import eventually
from tests.payment.conftest import (
    CountingProvider,
    Customer,
    OrderStub,
    StartPayment,
    db,
    stream_events,
)


async def test_event_written_while_the_relay_was_stopped_is_published_after_restart(
    start_payment: StartPayment,
    customer_for: Any,
    order_stub: OrderStub,
    redis: Any,
) -> None:
    stopped = await start_payment(outbox_relay=False)
    alice = customer_for(stopped)
    resp = await alice.pay(order_stub.add(alice.sub)["id"])
    assert resp.status == 201
    payment = await resp.json()
    stored = await db(stopped).payments.find_one({"_id": payment["id"]})
    assert [e["event_id"] for e in stored["outbox"]] == [f"{payment['id']}:payment.succeeded"]
    assert await redis.xlen(PAYMENTS_STREAM) == 0
    await stopped.close()

    restarted = await start_payment()  # same MongoDB, relay on

    async def published() -> list[dict[str, Any]]:
        return await stream_events(redis, PAYMENTS_STREAM)

    events = await eventually(published)
    assert [(e["type"], e["data"]["payment_id"]) for e in events] == [
        ("payment.succeeded", payment["id"])
    ]

    async def drained() -> bool:
        doc = await db(restarted).payments.find_one({"_id": payment["id"]})
        return doc["outbox"] == [] and "outbox_pending" not in doc

    await eventually(drained)
    assert await redis.xlen(PAYMENTS_STREAM) == 1  # published once, not on every poll


async def _reject(redis: Any, payment: dict[str, Any], customer_id: str) -> None:
    data = {
        "payment_id": payment["id"],
        "order_id": payment["order_id"],
        "customer_id": customer_id,
        "reason": "order_changed",
    }
    await redis.xadd(
        ORDERS_STREAM,
        {
            "type": "order.payment_rejected",
            "event_id": f"{payment['order_id']}:payment_rejected:{payment['id']}",
            "data": json.dumps(data),
        },
    )


async def test_rejected_payment_is_refunded_once_without_an_event(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider, redis: Any
) -> None:
    payment = await (await alice.pay(order_stub.add(alice.sub)["id"])).json()
    await eventually(lambda: redis.xlen(PAYMENTS_STREAM))  # payment.succeeded is out
    await _reject(redis, payment, alice.sub)
    await _reject(redis, payment, alice.sub)  # delivered twice: refunded once

    async def refunded() -> dict[str, Any] | None:
        resp = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
        body: dict[str, Any] = await resp.json()
        return body if body["status"] == "refunded" else None

    body = await eventually(refunded)
    assert body["failure_code"] == "order_changed"

    async def both_handled() -> bool:
        groups = await redis.xinfo_groups(ORDERS_STREAM)
        group = next(g for g in groups if g["name"] == "payment")
        return group["pending"] == 0 and group["entries-read"] == 2

    await eventually(both_handled)
    assert len(provider.refund_calls) == 1
    types = [e["type"] for e in await stream_events(redis, PAYMENTS_STREAM)]
    assert types == ["payment.succeeded"]


async def test_order_becomes_payable_again_after_the_automatic_refund(
    alice: Customer, order_stub: OrderStub, redis: Any
) -> None:
    order = order_stub.add(alice.sub)
    payment = await (await alice.pay(order["id"])).json()
    await _reject(redis, payment, alice.sub)

    async def refunded() -> bool:
        resp = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
        return bool((await resp.json())["status"] == "refunded")

    await eventually(refunded)
    again = await alice.pay(order["id"])  # the changed order is still pending
    assert again.status == 201


async def test_rejection_naming_another_customer_is_ignored(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider, redis: Any
) -> None:
    payment = await (await alice.pay(order_stub.add(alice.sub)["id"])).json()
    await _reject(redis, payment, "someone-else")

    async def handled() -> bool:
        groups = await redis.xinfo_groups(ORDERS_STREAM)
        return any(
            g["name"] == "payment" and g["entries-read"] == 1 and g["pending"] == 0 for g in groups
        )

    await eventually(handled)
    got = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
    assert (await got.json())["status"] == "succeeded"
    assert provider.refund_calls == []


async def test_rejection_of_a_payment_still_charging_is_retried(
    alice: Customer,
    order_stub: OrderStub,
    provider: CountingProvider,
    redis: Any,
    client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    caplog.set_level(logging.INFO, logger="svc_payment.events")
    provider.gate = asyncio.Event()
    order = order_stub.add(alice.sub)
    paying = asyncio.ensure_future(alice.pay(order["id"]))

    async def processing() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await db(client).payments.find_one({"order_id": order["id"]})
        return doc

    doc = await eventually(processing)
    await _reject(redis, {"id": doc["_id"], "order_id": order["id"]}, alice.sub)

    async def attempted() -> bool:
        return any(
            r.getMessage() == "payment busy; its rejection will be handled again"
            for r in caplog.records
        )

    await eventually(attempted)  # handled once: the payment was busy, so left for a retry
    provider.gate.set()
    assert (await paying).status == 201

    async def refunded() -> bool:
        current = await db(client).payments.find_one({"_id": doc["_id"]})
        return bool(current["status"] == "refunded")

    await eventually(refunded)
    assert len(provider.refund_calls) == 1


async def test_malformed_rejection_is_parked_not_acted_on(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider, redis: Any
) -> None:
    payment = await (await alice.pay(order_stub.add(alice.sub)["id"])).json()
    data = {"payment_id": payment["id"], "order_id": payment["order_id"]}  # no customer_id
    await redis.xadd(
        ORDERS_STREAM,
        {
            "type": "order.payment_rejected",
            "event_id": f"{payment['id']}:order.payment_rejected",
            "data": json.dumps(data),
        },
    )

    async def parked() -> list[Any]:
        entries: list[Any] = await redis.xrange(f"{ORDERS_STREAM}:dead")
        return entries

    dead = await eventually(parked)
    assert len(dead) == 1
    assert dead[0][1]["type"] == "order.payment_rejected"
    got = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
    assert (await got.json())["status"] == "succeeded"
    assert provider.refund_calls == []
