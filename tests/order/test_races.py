"""Racing transitions: whatever the interleaving, exactly one of two conflicting moves wins."""

from __future__ import annotations

import asyncio

from svc_core import Event
from svc_order.payment_events import handle_payment_event
from tests.order.helpers import (
    consumer_caught_up,
    create_order,
    eventually,
    get_order,
    order_events,
    publish_payment,
)

ROUNDS = 12


def succeeded(order, payment_id):
    return Event(
        stream="events:payments",
        entry_id="0-1",
        type="payment.succeeded",
        event_id=f"{payment_id}:payment.succeeded",
        data={
            "payment_id": payment_id,
            "order_id": order["id"],
            "customer_id": order["customer_id"],
            "amount": order["total"],
            "currency": order["currency"],
        },
        attempt=1,
    )


async def rejected_payments(bus):
    return {e["data"]["payment_id"] for e in await order_events(bus)}


async def race(route, payment, *, n):
    """Run both concurrently and return the route's response.

    The payment starts ``n`` event-loop turns after the request, so the rounds spread over the
    interleavings: payment first, in the middle of the request (after its read, before its
    write), and request first. This only varies the schedule; the assertions hold for every
    outcome.
    """

    async def delayed_payment():
        for _ in range(n):
            await asyncio.sleep(0)
        await payment

    resp, _ = await asyncio.gather(route, delayed_payment())
    return resp


async def test_cancel_racing_a_payment_exactly_one_wins(client, alice, bus):
    for n in range(ROUNDS):
        order = await create_order(client, alice)
        payment_id = f"pay-{n}"
        cancel = client.post(f"/orders/{order['id']}/cancel", headers=alice)
        pay = handle_payment_event(client.app, succeeded(order, payment_id))
        resp = await race(cancel, pay, n=n)
        final = await get_order(client, alice, order["id"])
        rejected = payment_id in await rejected_payments(bus)
        if resp.status == 200:
            assert final["status"] == "cancelled"
            assert rejected  # the charge is handed back for a refund
        else:
            assert resp.status == 409
            assert (await resp.json())["code"] == "order_not_pending"
            assert final["status"] == "paid"
            assert not rejected


async def test_cancel_racing_a_published_payment(client, alice, bus):
    order = await create_order(client, alice)
    await publish_payment(bus, "payment.succeeded", order, payment_id="pay-live")
    resp = await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    await eventually(lambda: consumer_caught_up(bus), bool)
    final = await get_order(client, alice, order["id"])
    rejected = "pay-live" in await rejected_payments(bus)
    assert (resp.status, final["status"], rejected) in {
        (200, "cancelled", True),
        (409, "paid", False),
    }


async def test_concurrent_cancels_only_one_succeeds(client, alice):
    order = await create_order(client, alice)
    responses = await asyncio.gather(
        *(client.post(f"/orders/{order['id']}/cancel", headers=alice) for _ in range(10))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 9


async def test_two_payments_for_one_order_only_one_pays(client, alice, bus):
    order = await create_order(client, alice)
    await asyncio.gather(
        handle_payment_event(client.app, succeeded(order, "pay-a")),
        handle_payment_event(client.app, succeeded(order, "pay-b")),
    )
    assert (await get_order(client, alice, order["id"]))["status"] == "paid"
    rejected = await rejected_payments(bus)
    assert len(rejected) == 1
    assert rejected <= {"pay-a", "pay-b"}


async def test_edit_racing_a_payment_exactly_one_wins(client, alice, bus):
    items = [{"sku": "X", "name": "x", "quantity": 1, "unit_price": 1}]
    for n in range(ROUNDS):
        order = await create_order(client, alice)
        payment_id = f"pay-e{n}"
        patch = client.patch(f"/orders/{order['id']}", json={"items": items}, headers=alice)
        pay = handle_payment_event(client.app, succeeded(order, payment_id))
        resp = await race(patch, pay, n=n)
        final = await get_order(client, alice, order["id"])
        rejected = payment_id in await rejected_payments(bus)
        if resp.status == 200:
            assert (final["status"], final["total"], rejected) == ("pending", 1, True)
        else:
            assert resp.status == 409
            assert (final["status"], final["total"], rejected) == ("paid", order["total"], False)


async def test_delete_racing_a_payment_exactly_one_wins(client, alice, bus):
    for n in range(ROUNDS):
        order = await create_order(client, alice)
        payment_id = f"pay-d{n}"
        delete = client.delete(f"/orders/{order['id']}", headers=alice)
        pay = handle_payment_event(client.app, succeeded(order, payment_id))
        resp = await race(delete, pay, n=n)
        rejected = payment_id in await rejected_payments(bus)
        after = await client.get(f"/orders/{order['id']}", headers=alice)
        if resp.status == 204:
            assert after.status == 404
            assert rejected
        else:
            assert resp.status == 409
            assert (await resp.json())["code"] == "order_not_deletable"
            assert (await after.json())["status"] == "paid"
            assert not rejected


# --- the payment lands between the route's read and its write (deterministic) ----------------


async def test_payment_between_cancels_read_and_write(client, alice, bus, monkeypatch):
    from svc_order import domain
    from svc_order.repository import OrderRepository

    order = await create_order(client, alice)
    real_apply = OrderRepository.apply

    async def payment_lands_first(self, transition, *args, **kwargs):
        if transition is domain.CANCEL:
            await handle_payment_event(client.app, succeeded(order, "pay-mid"))
        return await real_apply(self, transition, *args, **kwargs)

    monkeypatch.setattr(OrderRepository, "apply", payment_lands_first)
    resp = await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    assert resp.status == 409
    assert (await resp.json())["code"] == "order_not_pending"
    assert (await get_order(client, alice, order["id"]))["status"] == "paid"
    assert await order_events(bus) == []


async def test_payment_between_edits_read_and_write(client, alice, bus, monkeypatch):
    from svc_order.repository import OrderRepository

    order = await create_order(client, alice)
    real_revise = OrderRepository.revise

    async def payment_lands_first(self, *args, **kwargs):
        await handle_payment_event(client.app, succeeded(order, "pay-mid"))
        return await real_revise(self, *args, **kwargs)

    monkeypatch.setattr(OrderRepository, "revise", payment_lands_first)
    resp = await client.patch(f"/orders/{order['id']}", json={"currency": "USD"}, headers=alice)
    assert resp.status == 409
    assert (await resp.json())["code"] == "order_not_pending"
    final = await get_order(client, alice, order["id"])
    assert (final["status"], final["currency"]) == ("paid", "EUR")


async def test_payment_between_deletes_read_and_write(client, alice, bus, monkeypatch):
    from svc_order.repository import OrderRepository

    order = await create_order(client, alice)
    real_delete = OrderRepository.delete

    async def payment_lands_first(self, *args, **kwargs):
        await handle_payment_event(client.app, succeeded(order, "pay-mid"))
        return await real_delete(self, *args, **kwargs)

    monkeypatch.setattr(OrderRepository, "delete", payment_lands_first)
    resp = await client.delete(f"/orders/{order['id']}", headers=alice)
    assert resp.status == 409
    assert (await resp.json())["code"] == "order_not_deletable"
    assert (await get_order(client, alice, order["id"]))["status"] == "paid"


async def test_order_deleted_between_cancels_read_and_write(client, alice, monkeypatch):
    from svc_order import domain
    from svc_order.repository import OrderRepository

    order = await create_order(client, alice)
    real_apply = OrderRepository.apply

    async def deleted_first(self, transition, *args, **kwargs):
        if transition is domain.CANCEL:
            await self.orders.delete_one({"_id": order["id"]})
        return await real_apply(self, transition, *args, **kwargs)

    monkeypatch.setattr(OrderRepository, "apply", deleted_first)
    resp = await client.post(f"/orders/{order['id']}/cancel", headers=alice)
    assert resp.status == 404


async def test_edits_racing_each_other_each_get_a_version_of_their_own(client, alice, monkeypatch):
    """Ten edits read the same version, in the same millisecond: each must still write a new
    version (the one a payment is checked against), the losers retrying on top of the winner."""
    import datetime as dt

    import svc_order.views
    from svc_order.repository import OrderRepository

    frozen = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    monkeypatch.setattr(svc_order.views, "utcnow", lambda: frozen)
    real_revise = OrderRepository.revise

    async def revise_after_everyone_read(self, *args, **kwargs):
        await asyncio.sleep(0.01)  # every edit has read the order by now
        return await real_revise(self, *args, **kwargs)

    monkeypatch.setattr(OrderRepository, "revise", revise_after_everyone_read)
    order = await create_order(client, alice)

    async def edit(n):
        item = {"sku": f"sku-{n}", "name": "thing", "quantity": 1, "unit_price": 100}
        resp = await client.patch(f"/orders/{order['id']}", json={"items": [item]}, headers=alice)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["updated_at"]

    versions = await asyncio.gather(*(edit(n) for n in range(10)))
    assert len(set(versions)) == 10
    final = await get_order(client, alice, order["id"])
    assert final["updated_at"] == max(versions)
