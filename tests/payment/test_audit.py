"""The payment service's audit log (svc_core.audit): one record per charge and per refund,
through real HTTP and the order service's events, and never a card number in it."""

from __future__ import annotations

import json
import logging
from typing import Any

from pymongo.errors import AutoReconnect

from svc_core import audit, keys
from svc_core.contracts import PAYMENTS_STREAM
from svc_core.testing import eventually
from tests.payment.conftest import (
    DECLINED,
    MASTERCARD,
    VISA,
    CountingProvider,
    Customer,
    OrderStub,
)
from tests.payment.test_events import _reject


async def records(client: Any, **where: Any) -> list[dict[str, Any]]:
    collection = client.app[keys.MONGO_DB][audit.COLLECTION]
    return await collection.find(where).sort("_id", 1).to_list(None)


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [value]


async def test_a_payment_is_one_record_and_its_replay_none(
    alice: Customer, order_stub: OrderStub
) -> None:
    order = order_stub.add(alice.sub, total=2500, currency="EUR")
    resp = await alice.pay(order["id"], key="pay-once")
    assert resp.status == 201
    payment = await resp.json()
    replay = await alice.pay(order["id"], key="pay-once")
    assert replay.headers["Idempotent-Replayed"] == "true"
    (record,) = await records(alice.client)
    assert record["service"] == "payment"
    assert (record["action"], record["outcome"]) == ("payment.create", "success")
    assert record["actor"] == {"type": "customer", "id": alice.sub, "ip": "127.0.0.1"}
    assert record["target"] == {"type": "payment", "id": payment["id"]}
    assert record["detail"] == {"amount": 2500, "currency": "EUR", "order_id": order["id"]}
    assert record["request_id"] == resp.headers["X-Request-ID"]
    assert record["trace_id"] is None


async def test_a_declined_payment_and_a_refused_one_are_failures(
    alice: Customer, order_stub: OrderStub
) -> None:
    order = order_stub.add(alice.sub)
    declined = await alice.pay(order["id"], DECLINED)
    assert declined.status == 402
    failed_payment = (await declined.json())["payment"]
    missing = await alice.pay("no-such-order")
    assert missing.status == 404
    card_failure, not_found = await records(alice.client)
    assert card_failure["outcome"] == "failure"
    assert card_failure["target"] == {"type": "payment", "id": failed_payment["id"]}
    assert card_failure["detail"]["reason"] == "payment_failed"
    assert card_failure["detail"]["failure_code"] == failed_payment["failure_code"]
    assert not_found["outcome"] == "failure"
    assert not_found["target"] == {"type": "order", "id": "no-such-order"}
    assert not_found["request_id"] == missing.headers["X-Request-ID"]


async def test_a_refund_is_one_record_and_a_second_refund_a_failure(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    payment = await (await alice.pay(order_stub.add(alice.sub, total=700)["id"])).json()
    resp = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert resp.status == 200
    again = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert again.status == 409
    provider.fail_refunds = True
    other = await (await alice.pay(order_stub.add(alice.sub)["id"])).json()
    down = await alice.client.post(f"/payments/{other['id']}/refund", headers=alice.auth)
    assert down.status == 503
    refunded, refused, provider_down = await records(alice.client, action="payment.refund")
    assert refunded["outcome"] == "success"
    assert refunded["actor"] == {"type": "customer", "id": alice.sub, "ip": "127.0.0.1"}
    assert refunded["target"] == {"type": "payment", "id": payment["id"]}
    assert refunded["detail"] == {
        "order_id": payment["order_id"],
        "amount": 700,
        "currency": "EUR",
    }
    assert refunded["request_id"] == resp.headers["X-Request-ID"]
    assert (refused["outcome"], refused["detail"]["reason"]) == (
        "failure",
        "payment_not_refundable",
    )
    assert provider_down["outcome"] == "failure"
    assert provider_down["target"] == {"type": "payment", "id": other["id"]}


async def test_the_automatic_refund_of_a_rejected_payment_is_one_system_record(
    alice: Customer, order_stub: OrderStub, redis: Any
) -> None:
    payment = await (await alice.pay(order_stub.add(alice.sub)["id"])).json()
    await eventually(lambda: redis.xlen(PAYMENTS_STREAM))
    await _reject(redis, payment, alice.sub)
    await _reject(redis, payment, alice.sub)  # delivered twice: refunded and audited once

    async def handled() -> bool:
        groups = await redis.xinfo_groups("events:orders")
        group = next(g for g in groups if g["name"] == "payment")
        return group["pending"] == 0 and group["entries-read"] == 2

    await eventually(handled)
    (record,) = await records(alice.client, action="payment.refund")
    assert record["outcome"] == "success"
    assert record["actor"] == {"type": "system", "id": None, "ip": None}
    assert record["target"] == {"type": "payment", "id": payment["id"]}
    assert record["detail"]["reason"] == "order_changed"
    assert record["detail"]["customer_id"] == alice.sub
    assert record["request_id"] is None


async def test_no_card_number_or_cvc_reaches_the_audit_log(
    alice: Customer, order_stub: OrderStub
) -> None:
    await alice.pay(order_stub.add(alice.sub)["id"], VISA, cvc="987")
    await alice.pay(order_stub.add(alice.sub)["id"], MASTERCARD, cvc="987")
    await alice.pay(order_stub.add(alice.sub)["id"], DECLINED, cvc="987")
    stored = await records(alice.client)
    assert len(stored) == 3
    text = json.dumps(stored, default=str)
    for number in (VISA, MASTERCARD, DECLINED):
        assert number not in text
    values = set(leaves(stored))
    assert not values & {"987", 987, "4242", "4444", "0002"}  # no CVC, not even the last four
    assert all(set(r["detail"]) <= {"amount", "currency", "order_id", "reason", "failure_code"}
               for r in stored)  # fmt: skip


async def test_an_audit_store_outage_leaves_payments_working(
    alice: Customer, order_stub: OrderStub, caplog: Any
) -> None:
    class Down:
        async def insert_one(self, doc: dict[str, Any]) -> None:
            raise AutoReconnect("audit store down")

    alice.client.app[keys.AUDIT].collection = Down()
    caplog.set_level(logging.ERROR, logger="svc_core.audit")
    resp = await alice.pay(order_stub.add(alice.sub)["id"])
    assert resp.status == 201
    payment = await resp.json()
    assert payment["status"] == "succeeded"
    refund = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert refund.status == 200
    metrics = await (await alice.client.get("/metrics")).text()
    for action in ("payment.create", "payment.refund"):
        assert (
            f'svc_audit_failures_total{{action="{action}",reason="error",service="payment"}} 1.0'
            in metrics
        )
    assert [r.audit_action for r in caplog.records] == ["payment.create", "payment.refund"]
    assert VISA not in caplog.text
