"""POST /payments: success, declines, validation, the order's state, and ownership."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from svc_core.contracts import PAYMENTS_STREAM
from svc_core.testing import eventually
from tests.payment.conftest import (
    DECLINED,
    INSUFFICIENT,
    MASTERCARD,
    VISA,
    Customer,
    OrderStub,
    card,
    stream_events,
)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_pay_charges_the_orders_total_and_publishes(
    alice: Customer, order_stub: OrderStub, provider: Any, redis: Any
) -> None:
    order = order_stub.add(alice.sub, total=4321, currency="JPY")
    order["updated_at"] = "2026-11-25T06:07:08.009Z"  # the version charged, sent back as is
    resp = await alice.pay(order["id"])
    assert resp.status == 201
    payment = await resp.json()
    assert set(payment) == {
        "id",
        "order_id",
        "amount",
        "currency",
        "status",
        "card",
        "failure_code",
        "created_at",
    }
    assert payment["order_id"] == order["id"]
    assert (payment["amount"], payment["currency"]) == (4321, "JPY")
    assert payment["status"] == "succeeded"
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    assert payment["failure_code"] is None
    assert RFC3339.match(payment["created_at"])
    assert "Idempotent-Replayed" not in resp.headers
    assert provider.charge_calls == 1

    got = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
    assert got.status == 200
    assert await got.json() == payment

    events = await eventually(lambda: stream_events(redis, PAYMENTS_STREAM))
    assert events == [
        {
            "type": "payment.succeeded",
            "event_id": f"{payment['id']}:payment.succeeded",
            "data": {
                "payment_id": payment["id"],
                "order_id": order["id"],
                "customer_id": alice.sub,
                "amount": 4321,
                "currency": "JPY",
                # the order service pays the order only if it is still this version
                "order_updated_at": "2026-11-25T06:07:08.009Z",
            },
        }
    ]


async def test_order_is_read_as_the_caller(alice: Customer, order_stub: OrderStub) -> None:
    order = order_stub.add(alice.sub)
    resp = await alice.client.post(
        "/payments",
        json={"order_id": order["id"], "card": card()},
        headers={**alice.headers(), "X-Request-ID": "trace-me-123"},
    )
    assert resp.status == 201
    sent = order_stub.calls[-1]
    assert sent["Authorization"] == alice.auth["Authorization"]
    assert sent["X-Request-ID"] == "trace-me-123"


async def test_mastercard_brand(alice: Customer, order_stub: OrderStub) -> None:
    resp = await alice.pay(order_stub.add(alice.sub)["id"], MASTERCARD)
    assert resp.status == 201
    assert (await resp.json())["card"] == {"brand": "mastercard", "last4": "4444"}


@pytest.mark.parametrize(
    ("number", "code"), [(DECLINED, "card_declined"), (INSUFFICIENT, "insufficient_funds")]
)
async def test_decline_is_402_with_the_failed_payment(
    alice: Customer, order_stub: OrderStub, number: str, code: str, redis: Any
) -> None:
    order = order_stub.add(alice.sub)
    resp = await alice.pay(order["id"], number)
    assert resp.status == 402
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == "payment_failed"
    assert problem["status"] == 402
    assert problem["request_id"] == resp.headers["X-Request-ID"]
    payment = problem["payment"]
    assert payment["status"] == "failed"
    assert payment["failure_code"] == code
    assert payment["card"]["last4"] == number[-4:]

    listed = await (await alice.client.get("/payments", headers=alice.auth)).json()
    assert [p["id"] for p in listed["items"]] == [payment["id"]]
    assert listed["items"][0] == payment

    # A failed payment does not hold the order: paying again with a good card works.
    retry = await alice.pay(order["id"], VISA)
    assert retry.status == 201
    assert await redis.xlen(PAYMENTS_STREAM) <= 1  # no event for the decline


async def test_provider_error_is_a_failed_payment(
    alice: Customer, order_stub: OrderStub, provider: Any
) -> None:
    async def broken(*args: Any) -> Any:
        raise ConnectionError("provider unreachable")

    provider.charge = broken
    resp = await alice.pay(order_stub.add(alice.sub)["id"])
    assert resp.status == 402
    assert (await resp.json())["payment"]["failure_code"] == "processing_error"


async def test_unknown_order_is_404(alice: Customer) -> None:
    resp = await alice.pay("no-such-order")
    assert resp.status == 404
    assert (await resp.json())["code"] == "not_found"


async def test_someone_elses_order_is_404(
    alice: Customer, bob: Customer, order_stub: OrderStub, provider: Any
) -> None:
    order = order_stub.add(bob.sub)
    resp = await alice.pay(order["id"])
    assert resp.status == 404
    assert provider.charge_calls == 0


async def test_order_id_is_sent_path_safe(alice: Customer, order_stub: OrderStub) -> None:
    resp = await alice.pay("../orders/x?y=1")
    assert resp.status == 404
    # The stub routed it as one path segment: an injected path never reaches another route.
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize("status", ["cancelled", "paid", "refunded"])
async def test_order_not_pending_is_409(
    alice: Customer, order_stub: OrderStub, status: str
) -> None:
    order = order_stub.add(alice.sub, status=status)
    resp = await alice.pay(order["id"])
    assert resp.status == 409
    assert (await resp.json())["code"] == "order_not_pending"


async def test_paid_order_is_409_order_already_paid(
    alice: Customer, order_stub: OrderStub, provider: Any
) -> None:
    order = order_stub.add(alice.sub)
    assert (await alice.pay(order["id"])).status == 201
    again = await alice.pay(order["id"])  # a new key, while the order is still pending
    assert again.status == 409
    assert (await again.json())["code"] == "order_already_paid"
    order["status"] = "paid"  # and once the order service has marked it paid: still this code
    later = await alice.pay(order["id"])
    assert (await later.json())["code"] == "order_already_paid"
    assert provider.charge_calls == 1


async def test_order_service_down_is_503_and_the_key_is_free_again(
    alice: Customer, order_stub: OrderStub
) -> None:
    order = order_stub.add(alice.sub)
    order_stub.broken = True
    first = await alice.pay(order["id"], key="k-503")
    assert first.status == 503
    assert (await first.json())["code"] == "dependency_unavailable"
    order_stub.broken = False
    retry = await alice.pay(order["id"], key="k-503")
    assert retry.status == 201
    assert "Idempotent-Replayed" not in retry.headers


async def test_routes_need_a_token(client: Any) -> None:
    for method, path in [
        ("POST", "/payments"),
        ("GET", "/payments"),
        ("GET", "/payments/x"),
        ("POST", "/payments/x/refund"),
    ]:
        resp = await client.request(method, path, headers={"Idempotency-Key": "k"})
        assert resp.status == 401, path
        assert (await resp.json())["code"] == "unauthorized"


async def test_in_flight_payment_makes_another_409_order_already_paid(
    alice: Customer, order_stub: OrderStub, provider: Any
) -> None:
    order = order_stub.add(alice.sub)
    provider.gate = asyncio.Event()
    first = asyncio.ensure_future(alice.pay(order["id"], key="first"))

    async def charging() -> bool:
        return bool(provider.charge_calls == 1)

    await eventually(charging)
    second = await alice.pay(order["id"], key="second")
    assert second.status == 409
    assert (await second.json())["code"] == "order_already_paid"
    provider.gate.set()
    assert (await first).status == 201
    assert provider.charge_calls == 1


async def test_concurrent_payments_of_one_order_under_different_keys_charge_once(
    alice: Customer, order_stub: OrderStub, provider: Any
) -> None:
    order = order_stub.add(alice.sub)
    responses = await asyncio.gather(*(alice.pay(order["id"]) for _ in range(20)))
    statuses = sorted(resp.status for resp in responses)
    assert statuses == [201] + [409] * 19
    codes = {(await resp.json()).get("code") for resp in responses if resp.status == 409}
    assert codes == {"order_already_paid"}
    assert provider.charge_calls == 1


@pytest.mark.parametrize(
    "change",
    [
        {"total": "19.99"},  # never trust a dependency's JSON blindly
        {"updated_at": None},  # no version to send with payment.succeeded
    ],
    ids=["total-a-string", "updated_at-missing"],
)
async def test_unexpected_order_shape_is_503_not_a_charge(
    alice: Customer, order_stub: OrderStub, provider: Any, change: dict[str, Any]
) -> None:
    order = order_stub.add(alice.sub)
    order.update(change)
    resp = await alice.pay(order["id"])
    assert resp.status == 503
    assert (await resp.json())["code"] == "dependency_unavailable"
    assert provider.charge_calls == 0
