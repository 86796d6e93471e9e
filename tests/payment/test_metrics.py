"""The outbox's metrics: events written and not yet published, the oldest one's age, and what
the relay published (svc_outbox_*), and the consumer group's lag on the orders stream."""

from __future__ import annotations

from typing import Any

from svc_core.contracts import ORDERS_STREAM
from svc_core.testing import eventually, metric_value, metrics_of
from svc_payment.consumers import CONSUMER_GROUP
from tests.payment.conftest import OrderStub, StartPayment

PAYMENT = {"service": "payment"}


async def scrape(client: Any) -> Any:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return metrics_of(await resp.text())


async def test_outbox_backlog_grows_while_the_relay_is_stopped_and_drains_after(
    start_payment: StartPayment, customer_for: Any, order_stub: OrderStub
) -> None:
    stopped = await start_payment(outbox_relay=False)
    got = await scrape(stopped)
    assert metric_value(got, "svc_outbox_pending_events", **PAYMENT) == 0.0
    assert metric_value(got, "svc_outbox_oldest_age_seconds", **PAYMENT) == 0.0
    alice = customer_for(stopped)
    for _ in range(2):
        assert (await alice.pay(order_stub.add(alice.sub)["id"])).status == 201
    got = await scrape(stopped)
    assert metric_value(got, "svc_outbox_pending_events", **PAYMENT) == 2.0
    first_age = metric_value(got, "svc_outbox_oldest_age_seconds", **PAYMENT)
    assert first_age is not None
    assert first_age > 0.0
    again = await scrape(stopped)  # the same oldest event, older now
    assert metric_value(again, "svc_outbox_oldest_age_seconds", **PAYMENT) > first_age
    assert metric_value(got, "svc_outbox_published_total", **PAYMENT) == 0.0
    await stopped.close()

    relay = await start_payment()  # same MongoDB, relay on

    async def drained() -> bool:
        got = await scrape(relay)
        return metric_value(got, "svc_outbox_pending_events", **PAYMENT) == 0.0

    await eventually(drained)
    got = await scrape(relay)
    assert metric_value(got, "svc_outbox_oldest_age_seconds", **PAYMENT) == 0.0
    assert metric_value(got, "svc_outbox_published_total", **PAYMENT) == 2.0


async def test_a_malformed_order_event_moves_the_dead_letter_metrics(
    client: Any, redis: Any
) -> None:
    where = {**PAYMENT, "stream": ORDERS_STREAM, "group": CONSUMER_GROUP}

    async def reported() -> Any:
        got = await scrape(client)  # once the consumer has created its group
        return got if metric_value(got, "svc_events_pending", **where) is not None else None

    got = await eventually(reported)
    assert metric_value(got, "svc_events_dead_lettered_total", **where) == 0.0
    assert metric_value(got, "svc_events_lag", **where) == 0.0
    await redis.xadd(ORDERS_STREAM, {"type": "order.payment_rejected"})  # no data: malformed

    async def parked() -> bool:
        got = await scrape(client)
        return metric_value(got, "svc_events_dead_lettered_total", **where) == 1.0

    await eventually(parked)
    got = await scrape(client)
    dead = {**PAYMENT, "stream": ORDERS_STREAM}
    assert metric_value(got, "svc_events_dead_letter_entries", **dead) == 1.0
    assert metric_value(got, "svc_events_pending", **where) == 0.0
