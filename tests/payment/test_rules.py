"""Pure rules: Luhn, brands, expiry, the key header, the provider's test cards."""

from __future__ import annotations

import datetime as dt

import pytest
from aiohttp.test_utils import make_mocked_request

from svc_core import BadRequest
from svc_payment.domain import card_brand, card_expired, luhn_valid
from svc_payment.idempotency import fingerprint, key_from
from svc_payment.providers import Card, SandboxProvider


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4242424242424242", True),
        ("4242424242424241", False),
        ("378282246310005", True),
        ("6011111111111117", True),
        ("000000000000", True),
        ("79927398713", True),
        ("79927398710", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("2720990000000007", "mastercard"),
        ("2721000000000004", "unknown"),
        ("378282246310005", "amex"),
        ("340000000000009", "amex"),
        ("6011111111111117", "discover"),
        ("6445644564456445", "discover"),
        ("6500000000000002", "discover"),
        ("6221260000000000", "discover"),
        ("3530111333300000", "unknown"),
        ("5610591081018250", "unknown"),
    ],
)
def test_brand_from_iin(number: str, brand: str) -> None:
    assert card_brand(number) == brand


def test_card_is_valid_through_the_last_day_of_its_month() -> None:
    last_moment = dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=dt.UTC)
    assert not card_expired(11, 2026, last_moment)
    assert card_expired(11, 2026, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert card_expired(12, 2025, last_moment)
    # The month is judged in UTC, whatever the offset of the clock given.
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert card_expired(11, 2026, dt.datetime(2026, 12, 1, 1, 0, tzinfo=plus_two)) is False


@pytest.mark.parametrize("value", ["", "a\x01b", "k" * 256, "tab\there"])
def test_key_header_rejects(value: str) -> None:
    request = make_mocked_request("POST", "/payments", headers={"Idempotency-Key": value})
    with pytest.raises(BadRequest) as info:
        key_from(request)
    assert info.value.instance_code == "idempotency_key_missing"


def test_fingerprint_is_keyed_and_canonical() -> None:
    body = {"b": 1, "a": {"y": 2, "x": 3}}
    assert fingerprint("s1", body) == fingerprint("s1", {"a": {"x": 3, "y": 2}, "b": 1})
    assert fingerprint("s1", body) != fingerprint("s2", body)


def test_card_repr_hides_number_and_cvc() -> None:
    card = Card("4242424242424242", 12, 2030, "123")
    assert "4242424242424242" not in repr(card)
    assert "123" not in repr(card)
    assert (card.brand, card.last4) == ("visa", "4242")


async def test_sandbox_cards() -> None:
    sandbox = SandboxProvider()
    ok = await sandbox.charge(100, "EUR", Card("5555555555554444", 1, 2030, "123"))
    assert ok.succeeded
    assert ok.reference
    other = await sandbox.charge(100, "EUR", Card("6011111111111117", 1, 2030, "123"))
    assert other.succeeded
    declined = await sandbox.charge(100, "EUR", Card("4000000000000002", 1, 2030, "123"))
    assert (declined.status, declined.failure_code) == ("failed", "card_declined")
    poor = await sandbox.charge(100, "EUR", Card("4000000000009995", 1, 2030, "123"))
    assert (poor.status, poor.failure_code) == ("failed", "insufficient_funds")
