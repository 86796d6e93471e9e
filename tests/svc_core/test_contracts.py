"""The event contracts between services (svc_core.contracts): what a producer may send and what a
consumer accepts."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import pytest

from svc_core import Event, PermanentEventError, contracts

PAYMENT = {
    "payment_id": "p1",
    "order_id": "o1",
    "customer_id": "c1",
    "amount": 1999,
    "currency": "EUR",
}


def _event(type: str, data: Any) -> Event:
    return Event("events:x", "1-0", type, f"p1:{type}", data, attempt=1)


def test_every_event_type_has_a_schema() -> None:
    assert set(contracts.SCHEMAS) == {
        "payment.succeeded",
        "payment.refunded",
        "order.payment_rejected",
    }
    assert (contracts.PAYMENTS_STREAM, contracts.ORDERS_STREAM) == (
        "events:payments",
        "events:orders",
    )
    assert contracts.event_id("p1", "payment.refunded") == "p1:payment.refunded"


def test_outgoing_data_must_match_the_contract_exactly() -> None:
    succeeded = {**PAYMENT, "order_updated_at": "2026-11-25T04:15:00.123Z"}
    assert contracts.outgoing("payment.succeeded", succeeded) == succeeded
    assert contracts.outgoing("payment.refunded", PAYMENT) == PAYMENT
    with pytest.raises(ma.ValidationError):  # a field the contract does not have
        contracts.outgoing("payment.refunded", {**PAYMENT, "card": "4242"})
    with pytest.raises(ma.ValidationError):  # a field it requires
        contracts.outgoing("order.payment_rejected", {"payment_id": "p1", "order_id": "o1"})
    with pytest.raises(ma.ValidationError):  # minor units are integers
        contracts.outgoing("payment.succeeded", {**PAYMENT, "amount": "19.99"})


def test_incoming_data_is_validated_and_extra_fields_dropped() -> None:
    event = _event("payment.succeeded", {**PAYMENT, "added_later": True})
    assert contracts.incoming(event) == PAYMENT


@pytest.mark.parametrize(
    ("type", "data"),
    [
        ("payment.succeeded", {**PAYMENT, "amount": True}),
        ("payment.refunded", {k: v for k, v in PAYMENT.items() if k != "customer_id"}),
        ("order.payment_rejected", {"payment_id": "p1", "order_id": "o1", "customer_id": ""}),
        ("order.payment_rejected", ["not", "an", "object"]),
    ],
)
def test_a_malformed_incoming_event_is_permanent(type: str, data: Any) -> None:
    with pytest.raises(PermanentEventError, match=f"malformed {type} event"):
        contracts.incoming(_event(type, data))
