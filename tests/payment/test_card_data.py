"""A full card number or CVC never reaches the logs or MongoDB."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.payment.conftest import Customer, OrderStub, db

NUMBERS = ["4242424242424242", "4000000000000002", "4111111111111112"]  # ok, declined, bad Luhn
CVC = "8362"


def _strings(value: Any) -> list[str]:
    """Every string and number inside a stored document, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return [str(value)]


async def test_card_number_and_cvc_never_logged_or_stored(
    alice: Customer, order_stub: OrderStub, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    statuses = []
    for index, number in enumerate(NUMBERS):
        order = order_stub.add(alice.sub)
        resp = await alice.pay(order["id"], number, cvc=CVC, key=f"k-{index}")
        statuses.append(resp.status)
        replay = await alice.pay(order["id"], number, cvc=CVC, key=f"k-{index}")
        assert replay.status == resp.status
    assert statuses == [201, 402, 422]

    logged = [caplog.text] + [
        repr(value) for record in caplog.records for value in vars(record).values()
    ]
    assert caplog.records  # the requests were logged at all
    for number in NUMBERS:
        assert not any(number in text for text in logged)
    assert not any(f'"{CVC}"' in text or f"'{CVC}'" in text for text in logged)
    assert not any("cvc" in text.lower() for text in logged)

    for name in ("payments", "idempotency_keys"):
        docs = await db(client)[name].find({}).to_list(None)
        assert docs, name
        values = [s for doc in docs for s in _strings(doc)]
        for number in NUMBERS:
            assert not any(number in value for value in values), name
        assert CVC not in values, name
        assert not any(key in values for key in ("number", "cvc", "exp_month", "exp_year"))
    payments = await db(client).payments.find({}).to_list(None)
    assert sorted(p["card"]["last4"] for p in payments) == ["0002", "4242"]
