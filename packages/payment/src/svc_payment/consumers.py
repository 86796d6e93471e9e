"""What the payment service does with the order service's events (stream ``events:orders``)."""

from __future__ import annotations

from aiohttp import web

from svc_core import Event, keys
from svc_payment.domain import ORDER_PAYMENT_REJECTED
from svc_payment.payments import refund_for_changed_order
from svc_payment.repository import Payments
from svc_payment.typedefs import PROVIDER


async def on_order_event(app: web.Application, event: Event) -> None:
    if event.type != ORDER_PAYMENT_REJECTED:
        return  # other order events are not ours to act on
    await refund_for_changed_order(
        payments=Payments(app[keys.MONGO_DB]), provider=app[PROVIDER], data=event.data
    )
