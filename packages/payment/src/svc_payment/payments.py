"""What happens to a payment: charge an order, refund a charge, undo a charge the order rejected.

Each step is one transition of :mod:`svc_payment.domain`'s state machine, carried out by one
conditional update that also records its event in the document's outbox (see
:mod:`svc_payment.outbox`), so the change and its event are never split.
"""

from __future__ import annotations

import logging
from typing import Any

from svc_core import Conflict, DependencyUnavailable, new_id, utcnow
from svc_core.contracts import PAYMENT_REFUNDED, PAYMENT_SUCCEEDED
from svc_payment import domain
from svc_payment.domain import Status, Transition
from svc_payment.orders import Order
from svc_payment.outbox import OutboxRelay
from svc_payment.providers import Card, ChargeResult, PaymentProvider
from svc_payment.repository import OrderAlreadyClaimed, PaymentRepository

log = logging.getLogger("svc_payment")

Doc = dict[str, Any]


class OrderAlreadyPaid(Conflict):
    code = "order_already_paid"

    def default_detail(self) -> str:
        return "This order already has a payment."


class PaymentNotRefundable(Conflict):
    code = "payment_not_refundable"

    def default_detail(self) -> str:
        return "Only a succeeded payment can be refunded."


class PaymentDeclined(Exception):
    """The provider declined the charge (or could not answer); ``payment`` is the stored
    ``failed`` payment, which the API shows in a 402 ``payment_failed``."""

    def __init__(self, payment: Doc) -> None:
        super().__init__(payment["_id"])
        self.payment = payment


class RefundLater(Exception):
    """The payment is busy (being charged or refunded): handle the event again later."""


class Payments:
    """The payment operations, over the repository, the provider and the outbox relay."""

    def __init__(
        self, repository: PaymentRepository, provider: PaymentProvider, relay: OutboxRelay
    ) -> None:
        self.repository = repository
        self.provider = provider
        self.relay = relay

    # --- charge ------------------------------------------------------------------------------

    async def pay(self, order: Order, card: Card) -> Doc:
        """Charge ``order``'s total to ``card``: the succeeded payment. 409 when the order has a
        payment or is not pending; :class:`PaymentDeclined` when the provider says no."""
        await self._ensure_payable(order)
        payment = await self._claim(order, card)
        result = await self._charge(payment, card)
        if result.succeeded:
            return await self._succeeded(payment, result)
        raise PaymentDeclined(await self._failed(payment, result))

    async def _ensure_payable(self, order: Order) -> None:
        if await self.repository.order_is_claimed(order.id):
            raise OrderAlreadyPaid()
        if not order.payable:
            raise Conflict(f"The order is {order.status}, not pending.", code="order_not_pending")

    async def _claim(self, order: Order, card: Card) -> Doc:
        """The new payment, stored ``processing``: it holds the order before any charge, so two
        payments of one order cannot both reach the provider."""
        payment = domain.new_payment(
            payment_id=new_id(),
            customer_id=order.customer_id,
            order_id=order.id,
            amount=order.total,
            currency=order.currency,
            order_updated_at=order.updated_at,
            brand=card.brand,
            last4=card.last4,
            provider=self.provider.name,
            now=utcnow(),
        )
        try:
            await self.repository.insert_processing(payment)
        except OrderAlreadyClaimed:
            raise OrderAlreadyPaid() from None
        return payment

    async def _charge(self, payment: Doc, card: Card) -> ChargeResult:
        try:
            return await self.provider.charge(payment["amount"], payment["currency"], card)
        except Exception as exc:
            # A provider that cannot answer is a failed payment, so the order is free again.
            log.warning(
                "provider charge failed",
                extra={"payment_id": payment["_id"], "error": type(exc).__name__},
            )
            return ChargeResult(Status.FAILED, failure_code=domain.PROCESSING_ERROR)

    async def _succeeded(self, payment: Doc, result: ChargeResult) -> Doc:
        doc = await self._must(
            domain.SUCCEED,
            payment["_id"],
            fields={"provider_ref": result.reference},
            event=domain.outbox_event(payment, PAYMENT_SUCCEEDED),
        )
        self.relay.kick()
        log.info("payment succeeded", extra={"payment_id": doc["_id"], "order_id": doc["order_id"]})
        return doc

    async def _failed(self, payment: Doc, result: ChargeResult) -> Doc:
        doc = await self._must(
            domain.FAIL,
            payment["_id"],
            fields={"failure_code": result.failure_code or domain.PROCESSING_ERROR},
        )
        log.info(
            "payment failed",
            extra={
                "payment_id": doc["_id"],
                "order_id": doc["order_id"],
                "failure_code": doc["failure_code"],
            },
        )
        return doc

    # --- refund ------------------------------------------------------------------------------

    async def refund(self, payment: Doc) -> Doc:
        """Refund a succeeded payment at the provider and publish ``payment.refunded``;
        409 ``payment_not_refundable`` unless it is succeeded."""
        claimed = await self.repository.apply(domain.BEGIN_REFUND, payment["_id"], now=utcnow())
        if claimed is None:
            raise PaymentNotRefundable()
        await self._refund_at_provider(claimed)
        doc = await self._must(
            domain.FINISH_REFUND,
            claimed["_id"],
            event=domain.outbox_event(claimed, PAYMENT_REFUNDED),
        )
        self.relay.kick()
        log.info("payment refunded", extra={"payment_id": doc["_id"], "order_id": doc["order_id"]})
        return doc

    async def refund_for_changed_order(self, rejection: Doc) -> Doc | None:
        """The order service rejected ``payment.succeeded`` (the order changed): give the money
        back. ``rejection`` is an ``order.payment_rejected`` event's data. The refunded payment,
        or None when there was nothing to refund.

        No ``payment.refunded`` is published: the order was never paid, so there is nothing for
        the order service to undo. Safe to run twice: a payment already refunded (or failed) is
        left alone. :class:`RefundLater` while the payment is being charged or refunded.
        """
        payment = await self.repository.get(rejection["payment_id"])
        if (
            payment is None
            or payment["order_id"] != rejection["order_id"]
            or payment["customer_id"] != rejection["customer_id"]
        ):
            log.warning("order.payment_rejected for an unknown payment ignored")
            return None
        if payment["status"] in (Status.PROCESSING, Status.REFUNDING):
            raise RefundLater(payment["_id"])
        if payment["status"] != Status.SUCCEEDED:
            return None
        claimed = await self.repository.apply(domain.BEGIN_REFUND, payment["_id"], now=utcnow())
        if claimed is None:  # changed since we read it; the retry decides
            raise RefundLater(payment["_id"])
        await self._refund_at_provider(claimed)
        refunded = await self._must(
            domain.FINISH_REFUND, claimed["_id"], fields={"failure_code": domain.ORDER_CHANGED}
        )
        log.info(
            "payment refunded: order changed",
            extra={"payment_id": payment["_id"], "order_id": payment["order_id"]},
        )
        return refunded

    async def _refund_at_provider(self, payment: Doc) -> None:
        """The provider's refund; if it fails, the payment goes back to ``succeeded`` (503)."""
        try:
            await self.provider.refund(payment["provider_ref"])
        except Exception as exc:
            await self.repository.apply(domain.ABORT_REFUND, payment["_id"], now=utcnow())
            log.warning(
                "provider refund failed",
                extra={"payment_id": payment["_id"], "error": type(exc).__name__},
            )
            raise DependencyUnavailable("The payment provider could not refund now.") from None

    async def _must(
        self,
        transition: Transition,
        payment_id: str,
        *,
        fields: Doc | None = None,
        event: Doc | None = None,
    ) -> Doc:
        """A transition out of a status only this process moves the payment from (it claimed
        it): not finding it there is a bug, never a client error."""
        doc = await self.repository.apply(
            transition, payment_id, now=utcnow(), fields=fields, event=event
        )
        if doc is None:
            raise RuntimeError(f"payment {payment_id} is not {transition.source}")
        return doc
