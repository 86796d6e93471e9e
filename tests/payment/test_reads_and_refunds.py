"""GET /payments, GET /payments/{id} and POST /payments/{id}/refund."""

from __future__ import annotations

from typing import Any

import pytest

from svc_core.contracts import PAYMENTS_STREAM
from svc_core.testing import eventually
from tests.payment.conftest import (
    DECLINED,
    CountingProvider,
    Customer,
    OrderStub,
    stream_events,
)


async def _paid(customer: Customer, stub: OrderStub, number: str = "4242424242424242") -> Any:
    resp = await customer.pay(stub.add(customer.sub)["id"], number)
    payload = await resp.json()
    return payload if resp.status == 201 else payload["payment"]


async def test_get_someone_elses_or_unknown_payment_is_404(
    alice: Customer, bob: Customer, order_stub: OrderStub
) -> None:
    payment = await _paid(alice, order_stub)
    for customer, payment_id in [(bob, payment["id"]), (alice, "unknown")]:
        resp = await customer.client.get(f"/payments/{payment_id}", headers=customer.auth)
        assert resp.status == 404
        assert (await resp.json())["code"] == "not_found"


async def test_list_is_mine_newest_first_with_failures_and_pages(
    alice: Customer, bob: Customer, order_stub: OrderStub
) -> None:
    first = await _paid(alice, order_stub)
    failed = await _paid(alice, order_stub, DECLINED)
    third = await _paid(alice, order_stub)
    await _paid(bob, order_stub)

    page1 = await (await alice.client.get("/payments?limit=2", headers=alice.auth)).json()
    assert [p["id"] for p in page1["items"]] == [third["id"], failed["id"]]
    assert page1["items"][1]["status"] == "failed"
    assert page1["next_cursor"]
    page2 = await (
        await alice.client.get(
            "/payments", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=alice.auth
        )
    ).json()
    assert [p["id"] for p in page2["items"]] == [first["id"]]
    assert page2["next_cursor"] is None


async def test_list_filters_by_order(alice: Customer, order_stub: OrderStub) -> None:
    order = order_stub.add(alice.sub)
    failed = await alice.pay(order["id"], DECLINED)
    ok = await alice.pay(order["id"])
    await _paid(alice, order_stub)  # another order
    resp = await alice.client.get("/payments", params={"order_id": order["id"]}, headers=alice.auth)
    ids = [p["id"] for p in (await resp.json())["items"]]
    assert ids == [(await ok.json())["id"], (await failed.json())["payment"]["id"]]


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "bogus"}, {"status": "paid"}],
)
async def test_list_rejects_bad_query(alice: Customer, params: dict[str, str]) -> None:
    resp = await alice.client.get("/payments", params=params, headers=alice.auth)
    assert resp.status == 422
    assert (await resp.json())["code"] == "validation_failed"


async def test_refund_refunds_at_the_provider_and_publishes(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider, redis: Any
) -> None:
    payment = await _paid(alice, order_stub)
    resp = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert resp.status == 200
    refunded = await resp.json()
    assert refunded == {**payment, "status": "refunded"}
    assert len(provider.refund_calls) == 1

    async def both() -> list[dict[str, Any]] | None:
        events = await stream_events(redis, PAYMENTS_STREAM)
        return events if len(events) == 2 else None

    events = await eventually(both)
    assert events[1] == {
        "type": "payment.refunded",
        "event_id": f"{payment['id']}:payment.refunded",
        "data": {
            "payment_id": payment["id"],
            "order_id": payment["order_id"],
            "customer_id": alice.sub,
            "amount": payment["amount"],
            "currency": payment["currency"],
        },
    }

    again = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert again.status == 409
    assert (await again.json())["code"] == "payment_not_refundable"
    assert len(provider.refund_calls) == 1


async def test_refund_accepts_an_empty_object(alice: Customer, order_stub: OrderStub) -> None:
    payment = await _paid(alice, order_stub)
    resp = await alice.client.post(f"/payments/{payment['id']}/refund", json={}, headers=alice.auth)
    assert resp.status == 200


async def test_failed_payment_is_not_refundable(alice: Customer, order_stub: OrderStub) -> None:
    payment = await _paid(alice, order_stub, DECLINED)
    resp = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert resp.status == 409
    assert (await resp.json())["code"] == "payment_not_refundable"


async def test_refund_checks_404_before_422_before_409(
    alice: Customer, bob: Customer, order_stub: OrderStub
) -> None:
    payment = await _paid(alice, order_stub)
    not_mine = await bob.client.post(
        f"/payments/{payment['id']}/refund", json={"amount": 1}, headers=bob.auth
    )
    assert not_mine.status == 404
    with_body = await alice.client.post(
        f"/payments/{payment['id']}/refund", json={"amount": 1}, headers=alice.auth
    )
    assert with_body.status == 422
    assert "amount" in (await with_body.json())["errors"]


async def test_concurrent_refunds_refund_once(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    import asyncio

    payment = await _paid(alice, order_stub)
    responses = await asyncio.gather(
        *(
            alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
            for _ in range(10)
        )
    )
    assert sorted(r.status for r in responses) == [200] + [409] * 9
    assert len(provider.refund_calls) == 1


async def test_provider_refund_failure_is_503_and_leaves_it_refundable(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    payment = await _paid(alice, order_stub)
    provider.fail_refunds = True
    resp = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert resp.status == 503
    got = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
    assert (await got.json())["status"] == "succeeded"
    provider.fail_refunds = False
    retry = await alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    assert retry.status == 200


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/refund")])
async def test_unknown_query_parameter_is_422_after_the_404(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider, method: str, suffix: str
) -> None:
    payment = await _paid(alice, order_stub)
    resp = await alice.client.request(
        method, f"/payments/{payment['id']}{suffix}", params={"x": "1"}, headers=alice.auth
    )
    assert resp.status == 422
    problem = await resp.json()
    assert (problem["code"], problem["errors"]) == (
        "validation_failed",
        {"x": ["Unknown query parameter."]},
    )
    missing = await alice.client.request(
        method, f"/payments/unknown{suffix}", params={"x": "1"}, headers=alice.auth
    )
    assert missing.status == 404  # the path's payment is checked first
    assert (await missing.json())["code"] == "not_found"
    got = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
    assert (await got.json())["status"] == "succeeded"  # the refund did not happen
    assert provider.refund_calls == []


@pytest.mark.parametrize("mode", ["primary", "secondary"])
async def test_the_list_reads_with_the_configured_read_preference(
    start_payment: Any,
    customer_for: Any,
    order_stub: OrderStub,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    from svc_core.testing import record_list_reads
    from svc_payment import repository

    seen = record_list_reads(monkeypatch, repository)
    alice = customer_for(await start_payment(mongo_read_preference=mode))
    payment = await _paid(alice, order_stub)
    resp = await alice.client.get("/payments", headers=alice.auth)
    assert [p["id"] for p in (await resp.json())["items"]] == [payment["id"]]
    assert seen == [mode]
