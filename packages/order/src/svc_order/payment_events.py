"""Payment events move orders to paid and refunded; nothing else does.

Consumed from ``events:payments`` in consumer group ``order`` (at least once, so every handler
is idempotent: a duplicate finds the order already moved by the same payment and does nothing).
Each event's data is checked against its contract in :mod:`svc_core.contracts`.

- ``payment.succeeded``: the customer's pending order whose total and currency equal the amount
  paid, and whose ``updated_at`` is still the ``order_updated_at`` the payment was charged for
  (when the event carries it), becomes ``paid`` (one conditional update, so an edit, cancel or
  delete racing it cannot slip between the check and the write). Already paid by this payment:
  a duplicate, no-op. Any other case (changed, even to the same total; cancelled; deleted; paid
  by another payment) publishes ``order.payment_rejected`` on ``events:orders``; the payment
  service refunds on it. The order remembers the rejected payment id, so a late redelivery can
  never pay it with that payment.
- ``payment.refunded``: the order paid by that payment becomes ``refunded``; anything else is
  logged and acknowledged.
"""

from __future__ import annotations

import datetime as dt
import logging
from datetime import UTC
from typing import Any

from aiohttp import web

from svc_core import Event, contracts, to_rfc3339, utcnow
from svc_core.contracts import (
    ORDER_CHANGED,
    ORDER_PAYMENT_REJECTED,
    ORDERS_STREAM,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
)
from svc_order import domain
from svc_order.parts import PARTS
from svc_order.repository import Order, OrderRepository

log = logging.getLogger("svc_order.events")

CONSUMER_GROUP = "order"


async def handle_payment_event(app: web.Application, event: Event) -> None:
    """Consumer entry point; raising leaves the event pending for a retry."""
    if event.type not in (PAYMENT_SUCCEEDED, PAYMENT_REFUNDED):
        return  # not ours to act on
    # A malformed event is parked (events:payments:dead) for a person to look at.
    data = contracts.incoming(event)
    orders = PARTS.of(app).orders
    if event.type == PAYMENT_SUCCEEDED:
        await _payment_succeeded(app, orders, data)
    else:
        await _payment_refunded(orders, data)


_MILLISECOND = dt.timedelta(milliseconds=1)


def _same_version(order_updated_at: str | None) -> dict[str, Any] | None:
    """The condition "the order is still the version that was charged", for the update's filter.

    ``{}`` when the event does not say (an older producer: total and currency decide alone).
    ``None`` when it names a version no order can have (not ``to_rfc3339``'s form): the payment
    can only be rejected. Else ``updated_at`` within the millisecond the string names, which is
    exactly ``to_rfc3339(updated_at) == order_updated_at`` (the rendering cuts to milliseconds).
    """
    if order_updated_at is None:
        return {}
    try:
        start = dt.datetime.strptime(order_updated_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    if to_rfc3339(start) != order_updated_at:  # e.g. microseconds: never what we render
        return None
    return {"updated_at": {"$gte": start, "$lt": start + _MILLISECOND}}


def _moved_by(order: Order | None, payment_id: str, *states: domain.Status) -> bool:
    return order is not None and order["status"] in states and order.get("payment_id") == payment_id


async def _payment_succeeded(
    app: web.Application, orders: OrderRepository, data: dict[str, Any]
) -> None:
    payment_id, order_id = data["payment_id"], data["order_id"]
    version = _same_version(data.get("order_updated_at"))
    paid = None
    if version is not None:
        paid = await orders.apply(
            domain.PAY,
            order_id,
            customer_id=data["customer_id"],
            now=utcnow(),
            # the charge must match the order as it is at the moment of the write (the very
            # version that was charged, when the event names it), and a payment once rejected
            # stays rejected (it is being refunded)
            match={
                "total": data["amount"],
                "currency": data["currency"],
                "rejected_payment_ids": {"$ne": payment_id},
                **version,
            },
            fields={"payment_id": payment_id},
        )
    if paid is not None:
        log.info("order paid", extra={"order_id": order_id, "payment_id": payment_id})
        return
    current = await orders.get(order_id, customer_id=data["customer_id"])
    if _moved_by(current, payment_id, domain.Status.PAID, domain.Status.REFUNDED):
        return  # a redelivery of an event already applied
    log.warning(
        "payment rejected: order changed",
        extra={
            "order_id": order_id,
            "payment_id": payment_id,
            "order_status": current["status"] if current else None,
        },
    )
    await orders.remember_rejected_payment(order_id, payment_id)
    rejection = {
        "payment_id": payment_id,
        "order_id": order_id,
        "customer_id": data["customer_id"],
        "reason": ORDER_CHANGED,
    }
    await PARTS.of(app).events.publish(
        ORDERS_STREAM,
        ORDER_PAYMENT_REJECTED,
        contracts.outgoing(ORDER_PAYMENT_REJECTED, rejection),
        event_id=contracts.event_id(payment_id, ORDER_PAYMENT_REJECTED),
    )


async def _payment_refunded(orders: OrderRepository, data: dict[str, Any]) -> None:
    payment_id, order_id = data["payment_id"], data["order_id"]
    refunded = await orders.apply(
        domain.REFUND,
        order_id,
        customer_id=data["customer_id"],
        now=utcnow(),
        match={"payment_id": payment_id},
    )
    if refunded is not None:
        log.info("order refunded", extra={"order_id": order_id, "payment_id": payment_id})
        return
    current = await orders.get(order_id, customer_id=data["customer_id"])
    if _moved_by(current, payment_id, domain.Status.REFUNDED):
        return  # a redelivery of an event already applied
    # e.g. the refund of a payment this service rejected: the order never was paid by it
    log.info(
        "payment refund ignored: order not paid by this payment",
        extra={
            "order_id": order_id,
            "payment_id": payment_id,
            "order_status": current["status"] if current else None,
        },
    )
