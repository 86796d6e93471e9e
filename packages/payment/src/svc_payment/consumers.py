"""What the payment service does with the order service's events (stream ``events:orders``)."""

from __future__ import annotations

import logging

from aiohttp import web

from svc_core import Event, keys
from svc_payment.domain import ORDER_PAYMENT_REJECTED
from svc_payment.payments import RefundLater, refund_for_changed_order
from svc_payment.repository import Payments
from svc_payment.typedefs import PROVIDER

log = logging.getLogger("svc_payment.events")

BUSY_MESSAGE = "payment busy; its rejection will be handled again"


async def on_order_event(app: web.Application, event: Event) -> None:
    if event.type != ORDER_PAYMENT_REJECTED:
        return  # other order events are not ours to act on
    try:
        await refund_for_changed_order(
            payments=Payments(app[keys.MONGO_DB]), provider=app[PROVIDER], data=event.data
        )
    except RefundLater:
        log.info(BUSY_MESSAGE, extra={"attempt": event.attempt})
        raise
