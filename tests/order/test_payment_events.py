"""Payment events on Redis Streams move orders to paid and refunded, each exactly once."""

from __future__ import annotations

import pytest

from svc_order import OrderSettings, create_app
from tests.order.helpers import (
    consumer_caught_up,
    create_order,
    eventually,
    get_order,
    order_events,
    publish_payment,
)

SUCCEEDED = "payment.succeeded"
REFUNDED = "payment.refunded"


async def wait_status(client, headers, order_id, status):
    return await eventually(
        lambda: get_order(client, headers, order_id), lambda o: o["status"] == status
    )


async def wait_caught_up(bus):
    await eventually(lambda: consumer_caught_up(bus), bool)


async def wait_rejections(bus, count=1):
    events = await eventually(lambda: order_events(bus), lambda e: len(e) >= count)
    assert all(e["type"] == "order.payment_rejected" for e in events)
    return events


@pytest.fixture
async def paid_order(client, alice, bus):
    order = await create_order(client, alice)
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-1")
    return await wait_status(client, alice, order["id"], "paid")


async def test_succeeded_marks_the_order_paid(client, alice, bus):
    order = await create_order(client, alice)
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-1")
    paid = await wait_status(client, alice, order["id"], "paid")
    assert paid["total"] == order["total"]
    assert paid["items"] == order["items"]
    assert paid["updated_at"] >= order["updated_at"]
    await wait_caught_up(bus)
    assert await order_events(bus) == []


async def test_duplicate_succeeded_is_applied_once(client, alice, bus, paid_order):
    for _ in range(3):
        await publish_payment(bus, SUCCEEDED, paid_order, payment_id="pay-1")
    await wait_caught_up(bus)
    assert await get_order(client, alice, paid_order["id"]) == paid_order  # not even touched
    assert await order_events(bus) == []  # a duplicate is not a rejection


@pytest.mark.parametrize(
    "mismatch",
    [{"amount": 1}, {"currency": "USD"}, {"customer_id": "cust-bob"}],
    ids=["amount", "currency", "customer"],
)
async def test_mismatched_payment_is_rejected(client, alice, bus, mismatch):
    order = await create_order(client, alice)
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-x", **mismatch)
    [rejection] = await wait_rejections(bus)
    assert rejection == {
        "type": "order.payment_rejected",
        "event_id": "pay-x:order.payment_rejected",
        "data": {
            "payment_id": "pay-x",
            "order_id": order["id"],
            "customer_id": mismatch.get("customer_id", "cust-alice"),
            "reason": "order_changed",
        },
    }
    await wait_caught_up(bus)
    assert await get_order(client, alice, order["id"]) == order  # still pending, unchanged


async def test_payment_for_an_order_edited_after_the_charge_is_rejected(client, alice, bus):
    order = await create_order(client, alice)
    items = [{"sku": "MORE", "name": "More", "quantity": 5, "unit_price": 1000}]
    resp = await client.patch(f"/orders/{order['id']}", json={"items": items}, headers=alice)
    assert resp.status == 200
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-old")  # the old total
    [rejection] = await wait_rejections(bus)
    assert rejection["data"]["payment_id"] == "pay-old"
    assert (await get_order(client, alice, order["id"]))["status"] == "pending"


async def test_payment_for_an_order_edited_to_the_same_total_is_rejected(client, alice, bus):
    order = await create_order(client, alice)
    charged = order["updated_at"]  # the version the payment service read before charging
    items = [{"sku": "OTHER", "name": "Something else", "quantity": 1, "unit_price": 4498}]
    resp = await client.patch(f"/orders/{order['id']}", json={"items": items}, headers=alice)
    edited = await resp.json()
    assert (edited["total"], edited["currency"]) == (order["total"], order["currency"])
    assert edited["updated_at"] != charged

    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-same", order_updated_at=charged)
    [rejection] = await wait_rejections(bus)
    assert rejection == {
        "type": "order.payment_rejected",
        "event_id": "pay-same:order.payment_rejected",
        "data": {
            "payment_id": "pay-same",
            "order_id": order["id"],
            "customer_id": "cust-alice",
            "reason": "order_changed",
        },
    }
    await wait_caught_up(bus)
    assert await get_order(client, alice, order["id"]) == edited  # still pending, as edited

    # a payment charged for the order as it is now goes through
    await publish_payment(
        bus, SUCCEEDED, edited, payment_id="pay-now", order_updated_at=edited["updated_at"]
    )
    paid = await wait_status(client, alice, order["id"], "paid")
    assert paid["items"] == items
    await wait_caught_up(bus)
    assert len(await order_events(bus)) == 1


@pytest.mark.parametrize(
    "version",
    ["2026-11-25T04:15:00.123456Z", "2026-11-25T04:15:00.123+00:00", "yesterday"],
    ids=["microseconds", "offset", "not-a-time"],
)
async def test_payment_naming_a_version_no_order_has_is_rejected(client, alice, bus, version):
    order = await create_order(client, alice)
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-v", order_updated_at=version)
    [rejection] = await wait_rejections(bus)
    assert rejection["data"]["payment_id"] == "pay-v"
    await wait_caught_up(bus)
    assert (await get_order(client, alice, order["id"]))["status"] == "pending"


async def test_payment_for_a_cancelled_order_is_rejected(client, alice, bus):
    order = await create_order(client, alice)
    await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-c")
    [rejection] = await wait_rejections(bus)
    assert rejection["data"]["order_id"] == order["id"]
    assert (await get_order(client, alice, order["id"]))["status"] == "cancelled"


async def test_payment_for_a_deleted_order_is_rejected(client, alice, bus):
    order = await create_order(client, alice)
    assert (await client.delete(f"/orders/{order['id']}", headers=alice)).status == 204
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-d")
    [rejection] = await wait_rejections(bus)
    assert rejection["event_id"] == "pay-d:order.payment_rejected"


async def test_second_payment_of_a_paid_order_is_rejected(client, alice, bus, paid_order):
    await publish_payment(bus, SUCCEEDED, paid_order, payment_id="pay-2")
    [rejection] = await wait_rejections(bus)
    assert rejection["data"]["payment_id"] == "pay-2"
    # the refund of the rejected payment must not refund the order paid by pay-1
    await publish_payment(bus, REFUNDED, paid_order, payment_id="pay-2")
    await wait_caught_up(bus)
    assert (await get_order(client, alice, paid_order["id"]))["status"] == "paid"


async def test_refunded_marks_the_order_refunded_once(client, alice, bus, paid_order):
    await publish_payment(bus, REFUNDED, paid_order, payment_id="pay-1")
    refunded = await wait_status(client, alice, paid_order["id"], "refunded")
    await publish_payment(bus, REFUNDED, paid_order, payment_id="pay-1")
    await publish_payment(bus, SUCCEEDED, paid_order, payment_id="pay-1")  # late duplicate
    await wait_caught_up(bus)
    assert await get_order(client, alice, paid_order["id"]) == refunded
    assert await order_events(bus) == []


async def test_refund_of_an_unpaid_order_is_ignored(client, alice, bus):
    order = await create_order(client, alice)
    await publish_payment(bus, REFUNDED, order, payment_id="pay-never")
    await wait_caught_up(bus)  # acknowledged, not retried
    assert await get_order(client, alice, order["id"]) == order


async def test_malformed_events_are_parked_and_foreign_ones_skipped(client, alice, bus):
    order = await create_order(client, alice)
    await bus.publish("events:payments", SUCCEEDED, {"order_id": order["id"]})
    await bus.publish(
        "events:payments",
        SUCCEEDED,
        {
            "payment_id": "p",
            "order_id": order["id"],
            "customer_id": "cust-alice",
            "amount": "4498",
            "currency": "EUR",
        },
    )
    await bus.publish("events:payments", "payment.failed", {"order_id": order["id"]})
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-ok")
    await wait_status(client, alice, order["id"], "paid")
    await wait_caught_up(bus)
    assert await order_events(bus) == []
    # the two malformed events wait in the dead-letter stream; the foreign type was skipped
    parked = await bus.redis.xrange("events:payments:dead")
    assert [fields["type"] for _, fields in parked] == [SUCCEEDED, SUCCEEDED]
    assert all("malformed" in fields["error"] for _, fields in parked)


async def test_failed_handling_is_retried(client, alice, bus, monkeypatch):
    from svc_order.repository import OrderRepository

    real_apply = OrderRepository.apply
    calls = []

    async def flaky_apply(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise ConnectionError("MongoDB went away")
        return await real_apply(self, *args, **kwargs)

    monkeypatch.setattr(OrderRepository, "apply", flaky_apply)
    order = await create_order(client, alice)
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-r")
    await wait_status(client, alice, order["id"], "paid")
    assert len(calls) >= 2


# --- states only payment events reach --------------------------------------------------------


async def test_paid_order_cannot_be_edited_cancelled_or_deleted(client, alice, paid_order):
    order_id = paid_order["id"]
    resp = await client.patch(f"/orders/{order_id}", json={"currency": "USD"}, headers=alice)
    assert (resp.status, (await resp.json())["code"]) == (409, "order_not_pending")
    resp = await client.post(f"/orders/{order_id}/cancel", headers=alice)
    assert (resp.status, (await resp.json())["code"]) == (409, "order_not_pending")
    resp = await client.delete(f"/orders/{order_id}", headers=alice)
    assert (resp.status, (await resp.json())["code"]) == (409, "order_not_deletable")
    assert await get_order(client, alice, order_id) == paid_order


async def test_refunded_order_cannot_be_deleted(client, alice, bus, paid_order):
    await publish_payment(bus, REFUNDED, paid_order, payment_id="pay-1")
    await wait_status(client, alice, paid_order["id"], "refunded")
    resp = await client.delete(f"/orders/{paid_order['id']}", headers=alice)
    assert (resp.status, (await resp.json())["code"]) == (409, "order_not_deletable")
    resp = await client.patch(
        f"/orders/{paid_order['id']}", json={"currency": "USD"}, headers=alice
    )
    assert (resp.status, (await resp.json())["code"]) == (409, "order_not_pending")


async def test_paid_order_is_listed_by_status(client, alice, bus, paid_order):
    await create_order(client, alice)
    page = await (await client.get("/orders", params={"status": "paid"}, headers=alice)).json()
    assert [o["id"] for o in page["items"]] == [paid_order["id"]]


async def test_other_customer_sees_a_paid_order_as_missing(client, bob, paid_order):
    resp = await client.get(f"/orders/{paid_order['id']}", headers=bob)
    assert resp.status == 404


# --- the consumer resumes after a restart ----------------------------------------------------


async def test_payment_published_while_the_service_is_down_is_applied_on_restart(
    aiohttp_client, make_settings, alice, bus
):
    settings = make_settings(OrderSettings, events_retry_after=0.1)  # one memory:// MongoDB
    first = await aiohttp_client(create_app(settings))
    order = await create_order(first, alice)
    await first.close()  # the consumer stops with the app

    entry_id = await publish_payment(bus, SUCCEEDED, order, payment_id="pay-late")
    [group] = await bus.redis.xinfo_groups("events:payments")
    assert group["name"] == "order"
    assert group["last-delivered-id"] != entry_id  # nobody has read it

    second = await aiohttp_client(create_app(settings))
    assert (await get_order(second, alice, order["id"]))["status"] in ("pending", "paid")
    await wait_status(second, alice, order["id"], "paid")


async def test_a_rejected_payment_never_pays_later(client, alice, bus):
    order = await create_order(client, alice)
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-5", amount=500)
    await wait_rejections(bus)
    # the customer edits the order to exactly the rejected amount; the event is redelivered
    items = [{"sku": "A", "name": "a", "quantity": 1, "unit_price": 500}]
    resp = await client.patch(f"/orders/{order['id']}", json={"items": items}, headers=alice)
    assert (await resp.json())["total"] == 500
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-5", amount=500)
    await wait_caught_up(bus)
    assert (await get_order(client, alice, order["id"]))["status"] == "pending"
    # a fresh payment of the new total still goes through
    await publish_payment(bus, SUCCEEDED, order, payment_id="pay-6", amount=500)
    await wait_status(client, alice, order["id"], "paid")
