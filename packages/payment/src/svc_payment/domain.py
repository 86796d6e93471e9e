"""The payment rules: card checks, brands, statuses and the events a payment emits.

Statuses a client sees: ``succeeded``, ``failed``, ``refunded``. Two more exist only in storage:
``processing`` (the provider is being called; never shown) and ``refunding`` (a refund is at the
provider; shown as ``succeeded`` until it completes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

PAYMENTS_STREAM = "events:payments"
ORDERS_STREAM = "events:orders"
CONSUMER_GROUP = "payment"

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_REFUNDED = "payment.refunded"
ORDER_PAYMENT_REJECTED = "order.payment_rejected"

PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"
REFUNDING = "refunding"
REFUNDED = "refunded"

#: statuses stored once the provider has answered; ``processing`` payments are not shown
VISIBLE_STATUSES = (SUCCEEDED, FAILED, REFUNDING, REFUNDED)
#: what a client sees for each stored status
PUBLIC_STATUS = {SUCCEEDED: SUCCEEDED, FAILED: FAILED, REFUNDING: SUCCEEDED, REFUNDED: REFUNDED}

#: the failure code of a payment refunded because the order changed under it
ORDER_CHANGED = "order_changed"
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


def event_data(payment: dict[str, Any]) -> dict[str, Any]:
    """Data of ``payment.succeeded`` / ``payment.refunded``: a contract with the order service."""
    return {
        "payment_id": payment["_id"],
        "order_id": payment["order_id"],
        "customer_id": payment["customer_id"],
        "amount": payment["amount"],
        "currency": payment["currency"],
    }


def outbox_event(payment: dict[str, Any], type: str) -> dict[str, Any]:
    """An event waiting in the payment document until the relay has published it.

    ``payment.succeeded`` also carries ``order_updated_at``, the order's ``updated_at`` as read
    before the charge: the order service rejects the payment if the order changed since, even
    to the same total. (Payments stored before the field existed have none; the order service
    then checks total and currency only.)
    """
    data = event_data(payment)
    if type == PAYMENT_SUCCEEDED and payment.get("order_updated_at") is not None:
        data["order_updated_at"] = payment["order_updated_at"]
    return {
        "stream": PAYMENTS_STREAM,
        "type": type,
        "event_id": f"{payment['_id']}:{type}",
        "data": data,
    }
