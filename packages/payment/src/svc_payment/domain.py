"""The payment rules: its states and the transitions between them, card checks, brands, and the
events a payment emits.

The state machine lives here and only here::

    processing --succeed--> succeeded --begin_refund--> refunding --finish_refund--> refunded
    processing --fail--> failed            refunding --abort_refund--> succeeded

``processing`` (the provider is being called) is never shown; ``refunding`` (a refund is at the
provider) is shown as ``succeeded`` until it completes. A client sees ``succeeded``, ``failed``
and ``refunded`` (:data:`PUBLIC_STATUS`).

``repository.PaymentRepository.apply`` carries a transition out as one conditional update
filtered on the expected source state, so two racing transitions can never both win; the update
also records the transition's event in the payment's outbox, so a change and its event never
part (see :mod:`svc_payment.outbox`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum
from typing import Any

from svc_core import contracts, tracing


class Status(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


#: statuses stored once the provider has answered; ``processing`` payments are not shown
VISIBLE_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.REFUNDING, Status.REFUNDED})
#: what a client sees for each visible status
PUBLIC_STATUS = {
    Status.SUCCEEDED: Status.SUCCEEDED,
    Status.FAILED: Status.FAILED,
    Status.REFUNDING: Status.SUCCEEDED,
    Status.REFUNDED: Status.REFUNDED,
}
#: statuses in which a payment holds its order (``active: true``): no second payment may start
HOLDS_ORDER = frozenset({Status.PROCESSING, Status.SUCCEEDED, Status.REFUNDING})


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    name: str
    source: Status
    target: Status
    #: the field that records when it happened, if any
    stamp: str | None = None

    @property
    def releases_order(self) -> bool:
        """After it the order may be paid again (the payment drops ``active``)."""
        return self.source in HOLDS_ORDER and self.target not in HOLDS_ORDER


SUCCEED = Transition("succeed", Status.PROCESSING, Status.SUCCEEDED)
FAIL = Transition("fail", Status.PROCESSING, Status.FAILED)
BEGIN_REFUND = Transition("begin_refund", Status.SUCCEEDED, Status.REFUNDING)
ABORT_REFUND = Transition("abort_refund", Status.REFUNDING, Status.SUCCEEDED)
FINISH_REFUND = Transition("finish_refund", Status.REFUNDING, Status.REFUNDED, "refunded_at")

#: the failure code of a payment refunded because the order changed under it
ORDER_CHANGED = contracts.ORDER_CHANGED
#: the failure code when the provider could not be reached or answered nonsense
PROCESSING_ERROR = "processing_error"

BRANDS = ("visa", "mastercard", "amex", "discover", "unknown")


def luhn_valid(number: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    """The brand from the IIN ranges the networks publish."""
    if number.startswith("4"):
        return "visa"
    two, four, six = int(number[:2]), int(number[:4]), int(number[:6])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if four == 6011 or 644 <= int(number[:3]) <= 649 or two == 65 or 622126 <= six <= 622925:
        return "discover"
    return "unknown"


def card_expired(exp_month: int, exp_year: int, now: dt.datetime) -> bool:
    """A card is valid through the last day of its expiry month (UTC)."""
    now = now.astimezone(dt.UTC)
    return (exp_year, exp_month) < (now.year, now.month)


def new_payment(
    *,
    payment_id: str,
    customer_id: str,
    order_id: str,
    amount: int,
    currency: str,
    order_updated_at: str,
    brand: str,
    last4: str,
    provider: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """A payment about to claim its order before the provider is called (the repository stores
    it as ``processing``)."""
    return {
        "_id": payment_id,
        "customer_id": customer_id,
        "order_id": order_id,
        "amount": amount,
        "currency": currency,
        # the version of the order that was charged (sent back in payment.succeeded; never shown)
        "order_updated_at": order_updated_at,
        "card": {"brand": brand, "last4": last4},
        "failure_code": None,
        "provider": provider,
        "provider_ref": None,
        "outbox": [],
        "created_at": now,
        "updated_at": now,
    }


def outbox_event(payment: dict[str, Any], type: str) -> dict[str, Any]:
    """An event waiting in the payment document until the relay has published it: its data is
    the contract of ``type`` (:mod:`svc_core.contracts`).

    ``payment.succeeded`` also carries ``order_updated_at``, the order's ``updated_at`` as read
    before the charge: the order service rejects the payment if the order changed since, even
    to the same total. (Payments stored before the field existed have none; the order service
    then checks total and currency only.)
    """
    data = {
        "payment_id": payment["_id"],
        "order_id": payment["order_id"],
        "customer_id": payment["customer_id"],
        "amount": payment["amount"],
        "currency": payment["currency"],
    }
    if type == contracts.PAYMENT_SUCCEEDED and payment.get("order_updated_at") is not None:
        data["order_updated_at"] = payment["order_updated_at"]
    event = {
        "stream": contracts.PAYMENTS_STREAM,
        "type": type,
        "event_id": contracts.event_id(payment["_id"], type),
        "data": contracts.outgoing(type, data),
    }
    trace = tracing.carrier()  # the request's trace, continued when the relay publishes
    if trace:
        event["trace"] = trace
    return event
