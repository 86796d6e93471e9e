"""The payment's state machine: its transitions, and what a client sees of each state."""

from __future__ import annotations

import asyncio
from typing import Any

from svc_core import utcnow
from svc_core.testing import eventually
from svc_payment import domain
from svc_payment.domain import PUBLIC_STATUS, Status
from svc_payment.repository import PaymentRepository
from tests.payment.conftest import CountingProvider, Customer, OrderStub, db


def test_the_transitions_are_the_documented_graph() -> None:
    graph = {
        (t.name, t.source, t.target)
        for t in (
            domain.SUCCEED,
            domain.FAIL,
            domain.BEGIN_REFUND,
            domain.ABORT_REFUND,
            domain.FINISH_REFUND,
        )
    }
    assert graph == {
        ("succeed", Status.PROCESSING, Status.SUCCEEDED),
        ("fail", Status.PROCESSING, Status.FAILED),
        ("begin_refund", Status.SUCCEEDED, Status.REFUNDING),
        ("abort_refund", Status.REFUNDING, Status.SUCCEEDED),
        ("finish_refund", Status.REFUNDING, Status.REFUNDED),
    }
    # only failing and a finished refund let the order be paid again
    assert {t.name for t in (domain.FAIL, domain.FINISH_REFUND) if t.releases_order} == {
        "fail",
        "finish_refund",
    }
    assert not any(
        t.releases_order for t in (domain.SUCCEED, domain.BEGIN_REFUND, domain.ABORT_REFUND)
    )
    # a client sees three statuses; processing is never shown
    assert set(PUBLIC_STATUS.values()) == {"succeeded", "failed", "refunded"}
    assert Status.PROCESSING not in PUBLIC_STATUS


async def test_a_transition_applies_only_from_its_source(client: Any) -> None:
    repository = PaymentRepository(db(client))
    payment = {"_id": "p1", "order_id": "o1", "customer_id": "c1", "created_at": utcnow()}
    await repository.insert_processing(payment)
    assert await repository.apply(domain.BEGIN_REFUND, "p1", now=utcnow()) is None
    assert await repository.apply(domain.FINISH_REFUND, "p1", now=utcnow()) is None
    failed = await repository.apply(
        domain.FAIL, "p1", now=utcnow(), fields={"failure_code": "card_declined"}
    )
    assert failed is not None
    assert (failed["status"], failed["failure_code"], "active" in failed) == (
        "failed",
        "card_declined",
        False,
    )
    assert await repository.apply(domain.SUCCEED, "p1", now=utcnow()) is None  # failed stays
    assert (await repository.get("p1"))["status"] == "failed"  # type: ignore[index]


async def test_a_payment_being_refunded_is_shown_as_succeeded(
    alice: Customer, order_stub: OrderStub, provider: CountingProvider, client: Any
) -> None:
    paid = await alice.pay(order_stub.add(alice.sub)["id"])
    payment = await paid.json()
    gate = asyncio.Event()
    refund_at_provider = provider.refund

    async def slow_refund(reference: str) -> None:
        await gate.wait()
        await refund_at_provider(reference)

    provider.refund = slow_refund  # type: ignore[method-assign]
    refunding = asyncio.ensure_future(
        alice.client.post(f"/payments/{payment['id']}/refund", headers=alice.auth)
    )

    async def at_the_provider() -> bool:
        doc = await db(client).payments.find_one({"_id": payment["id"]})
        return bool(doc["status"] == "refunding")

    await eventually(at_the_provider)
    got = await alice.client.get(f"/payments/{payment['id']}", headers=alice.auth)
    assert await got.json() == payment  # status succeeded, as before the refund began
    listed = await (await alice.client.get("/payments", headers=alice.auth)).json()
    assert listed["items"] == [payment]

    gate.set()
    done = await refunding
    assert done.status == 200
    assert (await done.json())["status"] == "refunded"
