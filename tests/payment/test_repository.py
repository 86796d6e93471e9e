"""The indexes that carry the guarantees, exercised directly on the payment app's database."""

from __future__ import annotations

from typing import Any

import pytest

from svc_core import new_id, utcnow
from svc_payment import domain
from svc_payment.repository import OrderAlreadyClaimed, PaymentRepository
from tests.payment.conftest import StartPayment, db


def _payment(order_id: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "_id": new_id(),
        "customer_id": "c1",
        "order_id": order_id,
        "amount": 100,
        "currency": "EUR",
        "card": {"brand": "visa", "last4": "4242"},
        "failure_code": None,
        "outbox": [],
        "created_at": now,
        "updated_at": now,
    }


async def test_one_active_payment_per_order_is_enforced_by_the_index(client: Any) -> None:
    payments = PaymentRepository(db(client))
    first = _payment("order-1")
    await payments.insert_processing(first)
    with pytest.raises(OrderAlreadyClaimed):
        await payments.insert_processing(_payment("order-1"))
    await payments.insert_processing(_payment("order-2"))  # another order is free

    await payments.apply(
        domain.FAIL, first["_id"], now=utcnow(), fields={"failure_code": "card_declined"}
    )
    await payments.insert_processing(_payment("order-1"))  # a failed payment frees the order


async def test_refunded_payment_frees_its_order(client: Any) -> None:
    payments = PaymentRepository(db(client))
    first = _payment("order-1")
    await payments.insert_processing(first)
    event = {"stream": "s", "type": "t", "event_id": "e1", "data": {}}
    await payments.apply(
        domain.SUCCEED, first["_id"], now=utcnow(), fields={"provider_ref": "r"}, event=event
    )
    with pytest.raises(OrderAlreadyClaimed):
        await payments.insert_processing(_payment("order-1"))
    assert await payments.apply(domain.BEGIN_REFUND, first["_id"], now=utcnow()) is not None
    assert await payments.apply(domain.BEGIN_REFUND, first["_id"], now=utcnow()) is None  # once
    done = await payments.apply(domain.FINISH_REFUND, first["_id"], now=utcnow())
    assert done is not None
    assert done["status"] == "refunded"
    await payments.insert_processing(_payment("order-1"))


async def test_marking_published_keeps_events_added_meanwhile(start_payment: StartPayment) -> None:
    client = await start_payment(outbox_relay=False)  # no relay racing this test
    payments = PaymentRepository(db(client))
    doc = _payment("order-1")
    await payments.insert_processing(doc)
    first = {"stream": "s", "type": "a", "event_id": "e1", "data": {}}
    await payments.apply(
        domain.SUCCEED, doc["_id"], now=utcnow(), fields={"provider_ref": "r"}, event=first
    )
    await payments.apply(domain.BEGIN_REFUND, doc["_id"], now=utcnow())
    second = {"stream": "s", "type": "b", "event_id": "e2", "data": {}}
    await payments.apply(domain.FINISH_REFUND, doc["_id"], now=utcnow(), event=second)

    await payments.mark_published(doc["_id"], "e1")
    pending = await payments.with_pending_events(10)
    assert [[e["event_id"] for e in d["outbox"]] for d in pending] == [["e2"]]
    await payments.mark_published(doc["_id"], "e2")
    assert await payments.with_pending_events(10) == []
