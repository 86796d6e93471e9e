"""What the payment service does with the order service's events (stream ``events:orders``)."""

from __future__ import annotations

import logging

from aiohttp import web

from svc_core import Event, audit, contracts
from svc_core.contracts import ORDER_PAYMENT_REJECTED
from svc_payment.parts import PARTS
from svc_payment.payments import RefundLater

log = logging.getLogger("svc_payment.events")

CONSUMER_GROUP = "payment"
BUSY_MESSAGE = "payment busy; its rejection will be handled again"


async def on_order_event(app: web.Application, event: Event) -> None:
    if event.type != ORDER_PAYMENT_REJECTED:
        return  # other order events are not ours to act on
    # A malformed event is parked (events:orders:dead) for a person to look at.
    rejection = contracts.incoming(event)
    try:
        refunded = await PARTS.of(app).payments.refund_for_changed_order(rejection)
    except RefundLater:
        log.info(BUSY_MESSAGE, extra={"attempt": event.attempt})
        raise
    if refunded is not None:  # the service itself gave the money back: audited as "system"
        await audit.of(app).record(
            None,
            "payment.refund",
            outcome="success",
            target=("payment", refunded["_id"]),
            detail={
                "reason": "order_changed",
                "order_id": refunded["order_id"],
                "customer_id": refunded["customer_id"],
                "amount": refunded["amount"],
                "currency": refunded["currency"],
                "event_id": event.event_id,
            },
        )
