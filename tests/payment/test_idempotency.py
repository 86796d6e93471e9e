"""Idempotency-Key: replay, reuse, scope, concurrency, waiting, expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from svc_core.testing import eventually
from tests.payment.conftest import (
    DECLINED,
    MASTERCARD,
    VISA,
    CountingProvider,
    Customer,
    OrderStub,
    StartPayment,
    card,
    db,
)


async def test_same_key_same_body_replays_without_a_second_charge(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    order = order_stub.add(alice.sub)
    first = await alice.pay(order["id"], key="once")
    second = await alice.pay(order["id"], key="once")
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert provider.charge_calls == 1
    assert len(order_stub.calls) == 1  # the replay does not even read the order again


async def test_declines_and_404s_are_replayed_with_their_original_body(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    order = order_stub.add(alice.sub)
    first = await alice.pay(order["id"], DECLINED, key="declined")
    again = await alice.pay(order["id"], DECLINED, key="declined")
    assert first.status == again.status == 402
    assert again.content_type == "application/problem+json"
    first_body = await first.json()
    assert await again.json() == first_body  # request_id included: the original, unchanged
    assert again.headers["X-Request-ID"] != first_body["request_id"]
    assert provider.charge_calls == 1

    missing = await alice.pay("nope", key="missing")
    missing_again = await alice.pay("nope", key="missing")
    assert missing.status == missing_again.status == 404
    assert await missing.json() == await missing_again.json()
    assert missing_again.headers["Idempotent-Replayed"] == "true"


async def test_409_is_stored_and_replayed(alice: Customer, order_stub: OrderStub) -> None:
    order = order_stub.add(alice.sub, status="cancelled")
    first = await alice.pay(order["id"], key="k409")
    order["status"] = "pending"  # even if the order changes, the key's outcome stays
    again = await alice.pay(order["id"], key="k409")
    assert first.status == again.status == 409
    assert (await again.json())["code"] == "order_not_pending"
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_same_key_with_another_body_is_422_reused(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    order = order_stub.add(alice.sub)
    assert (await alice.pay(order["id"], VISA, key="reuse")).status == 201
    other = await alice.pay(order["id"], MASTERCARD, key="reuse")
    assert other.status == 422
    assert (await other.json())["code"] == "idempotency_key_reused"
    other_cvc = await alice.pay(order["id"], VISA, key="reuse", cvc="999")
    assert (await other_cvc.json())["code"] == "idempotency_key_reused"
    assert provider.charge_calls == 1


async def test_body_comparison_ignores_key_order_and_spacing(
    alice: Customer, order_stub: OrderStub
) -> None:
    order = order_stub.add(alice.sub)
    assert (await alice.pay(order["id"], key="canon")).status == 201
    c = card()
    reordered = {"card": {k: c[k] for k in reversed(list(c))}, "order_id": order["id"]}
    raw = json.dumps(reordered, indent=3)
    resp = await alice.client.post(
        "/payments",
        data=raw,
        headers={**alice.headers("canon"), "Content-Type": "application/json"},
    )
    assert resp.status == 201
    assert resp.headers["Idempotent-Replayed"] == "true"


async def test_keys_are_scoped_per_customer(
    alice: Customer, bob: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    a_order, b_order = order_stub.add(alice.sub), order_stub.add(bob.sub)
    a = await alice.pay(a_order["id"], key="shared-key")
    b = await bob.pay(b_order["id"], key="shared-key")
    assert a.status == b.status == 201
    assert "Idempotent-Replayed" not in b.headers
    assert (await a.json())["id"] != (await b.json())["id"]
    assert provider.charge_calls == 2


async def test_no_card_data_is_kept_for_the_comparison(
    alice: Customer, order_stub: OrderStub, client: Any
) -> None:
    order = order_stub.add(alice.sub)
    await alice.pay(order["id"], key="stored", cvc="7391")
    record = await db(client).idempotency_keys.find_one({"key": "stored"})
    assert record["customer_id"] == alice.sub
    assert len(record["fingerprint"]) == 64
    assert "4242424242424242" not in repr(record)
    assert "7391" not in repr(record["fingerprint"])
    expires = record["expires_at"] - record["created_at"]
    assert expires == dt.timedelta(hours=24)
    info = await db(client).idempotency_keys.index_information()
    assert any(spec.get("expireAfterSeconds") == 0 for spec in info.values())


async def test_fifty_concurrent_requests_charge_exactly_once(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    order = order_stub.add(alice.sub)
    responses = await asyncio.gather(*(alice.pay(order["id"], key="burst") for _ in range(50)))
    assert provider.charge_calls == 1
    statuses = {resp.status for resp in responses}
    bodies = [await resp.json() for resp in responses]
    assert statuses == {201}
    assert all(body == bodies[0] for body in bodies)
    replayed = [resp.headers.get("Idempotent-Replayed") for resp in responses]
    assert replayed.count("true") == 49
    assert replayed.count(None) == 1


async def test_duplicate_waits_for_the_first_and_replays(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider
) -> None:
    order = order_stub.add(alice.sub)
    provider.gate = asyncio.Event()
    first = asyncio.ensure_future(alice.pay(order["id"], key="slow"))
    await eventually(lambda: _true(provider.charge_calls == 1))
    second = asyncio.ensure_future(alice.pay(order["id"], key="slow"))
    await asyncio.sleep(0.1)  # let the duplicate find the key in progress (not a timing assertion)
    assert not second.done()
    provider.gate.set()
    a, b = await first, await second
    assert a.status == b.status == 201
    assert await a.json() == await b.json()
    assert b.headers["Idempotent-Replayed"] == "true"
    assert provider.charge_calls == 1


async def test_duplicate_gets_409_in_progress_when_the_first_takes_too_long(
    start_payment: StartPayment,
    customer_for: Any,
    order_stub: OrderStub,
    provider: CountingProvider,
) -> None:
    client = await start_payment(idempotency_wait_seconds=0.2)
    alice = customer_for(client)
    order = order_stub.add(alice.sub)
    provider.gate = asyncio.Event()
    first = asyncio.ensure_future(alice.pay(order["id"], key="stuck"))
    await eventually(lambda: _true(provider.charge_calls == 1))
    second = await alice.pay(order["id"], key="stuck")
    assert second.status == 409
    assert (await second.json())["code"] == "idempotency_in_progress"
    provider.gate.set()
    assert (await first).status == 201
    third = await alice.pay(order["id"], key="stuck")
    assert third.status == 201
    assert third.headers["Idempotent-Replayed"] == "true"
    assert provider.charge_calls == 1


async def test_an_expired_key_is_a_new_key(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider, client: Any
) -> None:
    order = order_stub.add(alice.sub)
    assert (await alice.pay(order["id"], DECLINED, key="old")).status == 402
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await db(client).idempotency_keys.update_one({"key": "old"}, {"$set": {"expires_at": past}})
    again = await alice.pay(order["id"], DECLINED, key="old")
    assert again.status == 402
    assert "Idempotent-Replayed" not in again.headers
    assert provider.charge_calls == 2


async def test_replay_after_the_card_expired_gets_the_first_answer(
    alice: Customer,
    order_stub: OrderStub,
    provider: CountingProvider,
    client: Any,
    monkeypatch: Any,
) -> None:
    import svc_payment.schemas

    clock = [dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.UTC)]  # the card's last minute
    monkeypatch.setattr(svc_payment.schemas, "utcnow", lambda: clock[0])
    order = order_stub.add(alice.sub)
    first = await alice.pay(order["id"], key="expiring", exp_month=12, exp_year=2030)
    assert first.status == 201

    clock[0] = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)  # the card has expired since
    again = await alice.pay(order["id"], key="expiring", exp_month=12, exp_year=2030)
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert provider.charge_calls == 1

    # a new request with that card is refused, and its key stays free
    late = await alice.pay(order_stub.add(alice.sub)["id"], key="late", exp_month=12, exp_year=2030)
    assert late.status == 422
    assert (await late.json())["errors"] == {"card": ["The card has expired."]}
    assert await db(client).idempotency_keys.count_documents({"key": "late"}) == 0
    assert provider.charge_calls == 1
    assert len(order_stub.calls) == 1  # neither the replay nor the refusal read an order


async def _true(value: bool) -> bool:
    return value
