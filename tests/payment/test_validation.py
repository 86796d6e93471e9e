"""400 and 422 on POST /payments: the key header and the card, and that they store nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.payment.conftest import VISA, Customer, OrderStub, card, db

NOW = dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Idempotency-Key": ""},
        {"Idempotency-Key": "k" * 256},
        {"Idempotency-Key": "clé"},
    ],
    ids=["absent", "empty", "too-long", "non-ascii"],
)
async def test_bad_idempotency_key_is_400(
    alice: Customer, order_stub: OrderStub, provider: Any, headers: dict[str, str]
) -> None:
    order = order_stub.add(alice.sub)
    resp = await alice.client.post(
        "/payments",
        json={"order_id": order["id"], "card": card()},
        headers={**alice.auth, **headers},
    )
    assert resp.status == 400
    assert (await resp.json())["code"] == "idempotency_key_missing"
    assert provider.charge_calls == 0
    assert order_stub.calls == []


async def test_longest_key_and_printable_punctuation_are_accepted(
    alice: Customer, order_stub: OrderStub
) -> None:
    resp = await alice.pay(order_stub.add(alice.sub)["id"], key="~ !" + "k" * 252)
    assert resp.status == 201


def _expired() -> tuple[int, int]:
    first_of_month = NOW.replace(day=1)
    last_month = first_of_month - dt.timedelta(days=1)
    return last_month.month, last_month.year


@pytest.mark.parametrize(
    ("card_fields", "path"),
    [
        ({"number": 4242424242424242}, "card.number"),
        ({"number": "42424242424"}, "card.number"),  # 11 digits
        ({"number": "42424242424242424242"}, "card.number"),  # 20 digits
        ({"number": "4242 4242 4242 4242"}, "card.number"),
        ({"number": "4242424242424241"}, "card.number"),  # Luhn fails
        ({"number": "\uff14\uff12" * 8}, "card.number"),  # fullwidth digits
        ({"number": "4242424242424242\n"}, "card.number"),  # trailing line feed
        ({"exp_month": 0}, "card.exp_month"),
        ({"exp_month": 13}, "card.exp_month"),
        ({"exp_month": "12"}, "card.exp_month"),
        ({"exp_month": 12.0}, "card.exp_month"),
        ({"exp_month": True}, "card.exp_month"),
        ({"exp_year": 30}, "card.exp_year"),
        ({"exp_year": 20301}, "card.exp_year"),
        ({"exp_year": "2030"}, "card.exp_year"),
        ({"cvc": "12"}, "card.cvc"),
        ({"cvc": "12345"}, "card.cvc"),
        ({"cvc": 123}, "card.cvc"),
        ({"cvc": "12a"}, "card.cvc"),
        ({"cvc": "123\n"}, "card.cvc"),
        ({"brand": "visa"}, "card.brand"),
    ],
)
async def test_bad_card_is_422_with_a_dotted_path(
    alice: Customer, order_stub: OrderStub, provider: Any, card_fields: dict[str, Any], path: str
) -> None:
    order = order_stub.add(alice.sub)
    body = {"order_id": order["id"], "card": {**card(), **card_fields}}
    resp = await alice.client.post("/payments", json=body, headers=alice.headers())
    assert resp.status == 422
    problem = await resp.json()
    assert problem["code"] == "validation_failed"
    assert path in problem["errors"]
    assert provider.charge_calls == 0


async def test_expired_card_is_422_and_this_month_is_fine(
    alice: Customer, order_stub: OrderStub
) -> None:
    month, year = _expired()
    order = order_stub.add(alice.sub)
    resp = await alice.pay(order["id"], exp_month=month, exp_year=year)
    assert resp.status == 422
    assert (await resp.json())["errors"] == {"card": ["The card has expired."]}
    ok = await alice.pay(order["id"], exp_month=NOW.month, exp_year=NOW.year)
    assert ok.status == 201


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"card": card()}, "order_id"),
        ({"order_id": "x"}, "card"),
        ({"order_id": "", "card": card()}, "order_id"),
        ({"order_id": {"$ne": None}, "card": card()}, "order_id"),
        ({"order_id": "x", "card": card(), "amount": 1}, "amount"),
        ({"order_id": "x", "card": card(), "currency": "EUR"}, "currency"),
        ({"order_id": "x", "card": "4242424242424242"}, "card"),
    ],
)
async def test_bad_body_is_422(alice: Customer, body: dict[str, Any], path: str) -> None:
    resp = await alice.client.post("/payments", json=body, headers=alice.headers())
    assert resp.status == 422
    assert path in (await resp.json())["errors"]


async def test_malformed_json_is_400(alice: Customer) -> None:
    resp = await alice.client.post(
        "/payments",
        data=b"{not json",
        headers={**alice.headers(), "Content-Type": "application/json"},
    )
    assert resp.status == 400


async def test_validation_failure_stores_nothing_so_the_key_can_be_retried(
    alice: Customer, order_stub: OrderStub, provider: Any, client: Any
) -> None:
    order = order_stub.add(alice.sub)
    bad = await alice.pay(order["id"], "4242424242424241", key="fix-me")
    assert bad.status == 422
    assert await db(client).idempotency_keys.count_documents({}) == 0
    assert await db(client).payments.count_documents({}) == 0
    fixed = await alice.pay(order["id"], VISA, key="fix-me")
    assert fixed.status == 201
    assert "Idempotent-Replayed" not in fixed.headers
    assert provider.charge_calls == 1


async def test_unknown_query_parameter_is_422_and_stores_nothing(
    alice: Customer, order_stub: OrderStub, provider: Any, client: Any
) -> None:
    order = order_stub.add(alice.sub)
    resp = await alice.client.post(
        "/payments",
        params={"x": "1"},
        json={"order_id": order["id"], "card": card()},
        headers=alice.headers("with-query"),
    )
    assert resp.status == 422
    assert (await resp.json())["errors"] == {"x": ["Unknown query parameter."]}
    assert await db(client).idempotency_keys.count_documents({}) == 0
    assert provider.charge_calls == 0


async def test_body_is_checked_before_the_key_and_neither_stores_anything(
    alice: Customer, order_stub: OrderStub, provider: Any, client: Any
) -> None:
    order = order_stub.add(alice.sub)
    bad_card = {"order_id": order["id"], "card": card("4242424242424241")}
    both = await alice.client.post("/payments", json=bad_card, headers=alice.auth)  # no key
    assert both.status == 422
    assert "card.number" in (await both.json())["errors"]
    key_only = await alice.client.post(
        "/payments", json={"order_id": order["id"], "card": card()}, headers=alice.auth
    )
    assert key_only.status == 400
    assert (await key_only.json())["code"] == "idempotency_key_missing"
    assert await db(client).idempotency_keys.count_documents({}) == 0
    assert provider.charge_calls == 0


async def test_openapi_declares_the_required_idempotency_key(client):
    spec = await (await client.get("/openapi.json")).json()
    params = spec["paths"]["/payments"]["post"]["parameters"]
    [key] = [p for p in params if p["in"] == "header"]
    assert key["name"] == "Idempotency-Key"
    assert key["required"] is True
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
