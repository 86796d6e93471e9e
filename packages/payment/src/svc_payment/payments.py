"""What happens to a payment: charge an order, refund a charge, undo a charge the order rejected.

Each status change is one conditional update that also records its event in the document's
outbox (see :mod:`svc_payment.outbox`), so the change and its event are never split.
"""

from __future__ import annotations

import logging
from typing import Any

from svc_core import Conflict, DependencyUnavailable, PaymentRequired, new_id, to_rfc3339, utcnow
from svc_payment.domain import (
    ORDER_CHANGED,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    PROCESSING,
    PROCESSING_ERROR,
    PUBLIC_STATUS,
    REFUNDING,
    SUCCEEDED,
    outbox_event,
)
from svc_payment.orders import Order
from svc_payment.outbox import OutboxRelay
from svc_payment.providers import Card, ChargeResult, PaymentProvider
from svc_payment.repository import OrderAlreadyClaimed, Payments

log = logging.getLogger("svc_payment")

Doc = dict[str, Any]


def render(doc: Doc) -> Doc:
    return {
        "id": doc["_id"],
        "order_id": doc["order_id"],
        "amount": doc["amount"],
        "currency": doc["currency"],
        "status": PUBLIC_STATUS[doc["status"]],
        "card": {"brand": doc["card"]["brand"], "last4": doc["card"]["last4"]},
        "failure_code": doc.get("failure_code"),
        "created_at": to_rfc3339(doc["created_at"]),
    }


def order_already_paid() -> Conflict:
    return Conflict("This order already has a payment.", code="order_already_paid")


async def pay_order(
    *,
    payments: Payments,
    provider: PaymentProvider,
    relay: OutboxRelay,
    order: Order,
    card: Card,
) -> Doc:
    """Charge ``order``'s total to ``card``: the succeeded payment, or 402/409 as a Problem."""
    if await payments.order_is_claimed(order.id):
        raise order_already_paid()
    if order.status != "pending":
        raise Conflict(f"The order is {order.status}, not pending.", code="order_not_pending")
    now = utcnow()
    payment: Doc = {
        "_id": new_id(),
        "customer_id": order.customer_id,
        "order_id": order.id,
        "amount": order.total,
        "currency": order.currency,
        "order_updated_at": order.updated_at,  # the version of the order that was charged
        "card": {"brand": card.brand, "last4": card.last4},
        "failure_code": None,
        "provider": provider.name,
        "provider_ref": None,
        "outbox": [],
        "created_at": now,
        "updated_at": now,
    }
    try:
        await payments.insert_processing(payment)  # claims the order before any charge
    except OrderAlreadyClaimed:
        raise order_already_paid() from None
    try:
        result = await provider.charge(order.total, order.currency, card)
    except Exception as exc:
        # A provider that cannot answer is a failed payment, so the order is free again.
        log.warning(
            "provider charge failed",
            extra={"payment_id": payment["_id"], "error": type(exc).__name__},
        )
        result = ChargeResult("failed", failure_code=PROCESSING_ERROR)
    if result.succeeded:
        doc = await payments.mark_succeeded(
            payment["_id"],
            reference=result.reference,
            event=outbox_event(payment, PAYMENT_SUCCEEDED),
            now=utcnow(),
        )
        relay.kick()
        log.info("payment succeeded", extra={"payment_id": doc["_id"], "order_id": order.id})
        return doc
    doc = await payments.mark_failed(
        payment["_id"], failure_code=result.failure_code or PROCESSING_ERROR, now=utcnow()
    )
    log.info(
        "payment failed",
        extra={"payment_id": doc["_id"], "order_id": order.id, "failure_code": doc["failure_code"]},
    )
    raise PaymentRequired(
        "The payment was not accepted.", code="payment_failed", extra={"payment": render(doc)}
    )


async def refund_payment(
    *, payments: Payments, provider: PaymentProvider, relay: OutboxRelay, payment: Doc
) -> Doc:
    """Refund a succeeded payment at the provider; 409 ``payment_not_refundable`` otherwise."""
    claimed = await payments.begin_refund(payment["_id"], utcnow())
    if claimed is None:
        raise Conflict("Only a succeeded payment can be refunded.", code="payment_not_refundable")
    await _refund_at_provider(payments, provider, claimed)
    doc = await payments.finish_refund(
        claimed["_id"], now=utcnow(), event=outbox_event(claimed, PAYMENT_REFUNDED)
    )
    relay.kick()
    log.info("payment refunded", extra={"payment_id": doc["_id"], "order_id": doc["order_id"]})
    return doc


class RefundLater(Exception):
    """The payment is busy (being charged or refunded): handle the event again later."""


async def refund_for_changed_order(
    *, payments: Payments, provider: PaymentProvider, data: Doc
) -> None:
    """The order service rejected ``payment.succeeded`` (the order changed): give the money back.

    No ``payment.refunded`` is published: the order was never paid, so there is nothing for the
    order service to undo. Safe to run twice: a payment already refunded (or failed) is left alone.
    """
    payment = await payments.get(str(data.get("payment_id")))
    if (
        payment is None
        or payment["order_id"] != data.get("order_id")
        or (payment["customer_id"] != data.get("customer_id"))
    ):
        log.warning("order.payment_rejected for an unknown payment ignored")
        return
    if payment["status"] in (PROCESSING, REFUNDING):
        raise RefundLater(payment["_id"])
    if payment["status"] != SUCCEEDED:
        return
    claimed = await payments.begin_refund(payment["_id"], utcnow())
    if claimed is None:  # changed since we read it; the retry decides
        raise RefundLater(payment["_id"])
    await _refund_at_provider(payments, provider, claimed)
    await payments.finish_refund(
        claimed["_id"], now=utcnow(), event=None, failure_code=ORDER_CHANGED
    )
    log.info(
        "payment refunded: order changed",
        extra={"payment_id": payment["_id"], "order_id": payment["order_id"]},
    )


async def _refund_at_provider(payments: Payments, provider: PaymentProvider, payment: Doc) -> None:
    try:
        await provider.refund(payment["provider_ref"])
    except Exception as exc:
        await payments.abort_refund(payment["_id"], utcnow())
        log.warning(
            "provider refund failed",
            extra={"payment_id": payment["_id"], "error": type(exc).__name__},
        )
        raise DependencyUnavailable("The payment provider could not refund now.") from None
