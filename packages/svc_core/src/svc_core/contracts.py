"""Event contracts between services: the one home of each stream, event type and data shape.

Services never import each other; what one publishes and another consumes is declared here, once,
and both sides use it: the producer checks the data it builds (:func:`outgoing`), the consumer
validates what it receives (:func:`incoming`).

``events:payments`` (published by payment, consumed by order):

- ``payment.succeeded``: :class:`PaymentSucceeded` — a charge went through; ``order_updated_at``
  is the order's ``updated_at`` as ``GET /orders/{id}`` rendered it before the charge (absent
  from older producers' events).
- ``payment.refunded``: :class:`PaymentRefunded` — a succeeded payment was refunded on request.

``events:orders`` (published by order, consumed by payment):

- ``order.payment_rejected``: :class:`PaymentRejected` — the order changed (or was cancelled or
  deleted) between the charge and its update, so the payment must be given back.

An event's id is ``"{payment_id}:{type}"`` (:func:`event_id`): a redelivery keeps it, so
consumers can recognise a duplicate.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from svc_core.events import Event, PermanentEventError
from svc_core.schema import Int, Str, validate

PAYMENTS_STREAM = "events:payments"
ORDERS_STREAM = "events:orders"

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_REFUNDED = "payment.refunded"
ORDER_PAYMENT_REJECTED = "order.payment_rejected"

#: ``order.payment_rejected``'s reason: the order is no longer the one that was charged
ORDER_CHANGED = "order_changed"

_ID = validate.Length(min=1, max=200)


class EventData(ma.Schema):
    """Fields beyond the contract are ignored by a consumer, so a producer may add some."""

    class Meta:
        unknown = ma.EXCLUDE


class _PaymentData(EventData):
    payment_id = Str(required=True, validate=_ID)
    order_id = Str(required=True, validate=_ID)
    customer_id = Str(required=True, validate=_ID)
    #: minor units of ``currency``
    amount = Int(required=True)
    currency = Str(required=True)


class PaymentSucceeded(_PaymentData):
    order_updated_at = Str(validate=validate.Length(min=1, max=64))


class PaymentRefunded(_PaymentData):
    pass


class PaymentRejected(EventData):
    payment_id = Str(required=True, validate=_ID)
    order_id = Str(required=True, validate=_ID)
    customer_id = Str(required=True, validate=_ID)
    reason = Str(required=True, validate=validate.Length(min=1, max=64))


#: event type -> the schema of its data
SCHEMAS: dict[str, ma.Schema] = {
    PAYMENT_SUCCEEDED: PaymentSucceeded(),
    PAYMENT_REFUNDED: PaymentRefunded(),
    ORDER_PAYMENT_REJECTED: PaymentRejected(),
}


def event_id(payment_id: str, type: str) -> str:
    return f"{payment_id}:{type}"


def outgoing(type: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` for an event of ``type`` about to be published, checked against its contract
    (unknown fields included): a producer's mistake fails where it is made, not at a consumer.
    Raises ``marshmallow.ValidationError``."""
    loaded: dict[str, Any] = SCHEMAS[type].load(data, unknown=ma.RAISE)
    return loaded


def incoming(event: Event) -> dict[str, Any]:
    """The data of a received ``event``, validated against its type's contract (fields beyond it
    dropped). A malformed event never becomes valid by retrying it: :class:`PermanentEventError`
    parks it (``<stream>:dead``) for a person to look at."""
    try:
        loaded: dict[str, Any] = SCHEMAS[event.type].load(event.data)
    except ma.ValidationError as exc:
        raise PermanentEventError(f"malformed {event.type} event: {exc.messages}") from None
    return loaded
