"""Order and payment services end to end: real apps on real sockets, one Redis, events between.

Self-contained (its own fixtures): the order and payment apps are started here with
``svc_core.serve`` on free ports; the payment service reads orders from the order app over HTTP,
and the two talk through the ``events:payments`` / ``events:orders`` streams. Each app's MongoDB
is a named in-memory database (``memory://NAME``), so a restarted app sees what its predecessor
stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from svc_core import serve
from svc_core.testing import eventually, free_port
from svc_order import create_app as create_order_app
from svc_order.settings import OrderSettings
from svc_payment import create_app as create_payment_app
from svc_payment.settings import PaymentSettings

DEADLINE = 10.0  # generous: a poll's upper bound, not a timing assertion
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
ITEMS = [{"sku": "book-1", "name": "A book", "quantity": 2, "unit_price": 1250}]


class RunningApp:
    """One app served on a free port, like a process of its own: started and stopped inside one
    task, so whatever its contexts set up is torn down in the same context."""

    def __init__(self, app: web.Application) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = asyncio.Event()
        self._started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._life(app))

    async def _life(self, app: web.Application) -> None:
        try:
            runner = await serve(app, "127.0.0.1", self.port)
        except BaseException as exc:
            self._started.set_exception(exc)
            raise
        self._started.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def started(self) -> RunningApp:
        await asyncio.shield(self._started)
        return self

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):  # a failed start was reported by started()
            await self._task


class Services:
    """Starts and stops the apps of one test; every app is stopped at the end."""

    def __init__(self, make_settings: Callable[..., Any]) -> None:
        self.make_settings = make_settings
        self.order_mongo = f"memory://e2e-order-{uuid.uuid4().hex}"
        self.payment_mongo = f"memory://e2e-payment-{uuid.uuid4().hex}"
        self.running: list[RunningApp] = []

    async def _start(self, app: web.Application) -> RunningApp:
        running = RunningApp(app)
        self.running.append(running)
        return await running.started()

    async def start_order(self, *, consumer: bool = True) -> RunningApp:
        """An order app; ``consumer=False``: its API serves but its event consumer is down."""
        settings = self.make_settings(
            OrderSettings, mongo_url=self.order_mongo, events_retry_after=0.2
        )
        app = create_order_app(settings)
        if not consumer:
            # The order service has no switch for this; leave out its consumers (Events.start).
            kept = [
                c for c in app.cleanup_ctx if "Events.start" not in getattr(c, "__qualname__", "")
            ]
            assert len(kept) == len(app.cleanup_ctx) - 1
            app.cleanup_ctx[:] = kept
        return await self._start(app)

    async def start_payment(self, order_url: str) -> str:
        settings = self.make_settings(
            PaymentSettings,
            mongo_url=self.payment_mongo,
            order_service_url=order_url,
            outbox_poll_seconds=0.05,
        )
        return (await self._start(create_payment_app(settings))).url

    async def stop(self, running: RunningApp) -> None:
        self.running.remove(running)
        await running.stop()

    async def stop_all(self) -> None:
        for running in reversed(self.running):
            await running.stop()
        self.running.clear()


@pytest.fixture
async def services(make_settings: Callable[..., Any]) -> AsyncIterator[Services]:
    running = Services(make_settings)
    try:
        yield running
    finally:
        await running.stop_all()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as client:
        yield client


@pytest.fixture
async def events(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def customer(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=f'cust-{uuid.uuid4().hex[:12]}')}"}


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    body: Any = None,
    status: int = 200,
) -> Any:
    async with session.request(method, url, json=body, headers=headers) as resp:
        payload = await resp.json(content_type=None)
        assert resp.status == status, payload
        return payload


async def create_order(session: aiohttp.ClientSession, url: str, who: dict[str, str]) -> Any:
    order = await call(
        session, "POST", f"{url}/orders", who, {"currency": "EUR", "items": ITEMS}, 201
    )
    assert (order["status"], order["total"]) == ("pending", 2500)
    return order


async def pay(session: aiohttp.ClientSession, url: str, who: dict[str, str], order_id: str) -> Any:
    headers = {**who, "Idempotency-Key": uuid.uuid4().hex}
    body = {"order_id": order_id, "card": CARD}
    return await call(session, "POST", f"{url}/payments", headers, body, 201)


def order_status_is(
    session: aiohttp.ClientSession, url: str, who: dict[str, str], order_id: str, status: str
) -> Callable[[], Awaitable[Any]]:
    async def check() -> Any:
        order = await call(session, "GET", f"{url}/orders/{order_id}", who)
        return order if order["status"] == status else None

    return check


async def stream_types(events: aioredis.Redis, stream: str) -> list[str]:
    return [fields["type"] for _id, fields in await events.xrange(stream)]


async def test_pay_then_refund_moves_the_order(
    services: Services, session: aiohttp.ClientSession, customer: dict[str, str]
) -> None:
    orders = (await services.start_order()).url
    payments = await services.start_payment(orders)
    order = await create_order(session, orders, customer)

    payment = await pay(session, payments, customer, order["id"])
    assert (payment["amount"], payment["currency"]) == (2500, "EUR")
    paid = await eventually(
        order_status_is(session, orders, customer, order["id"], "paid"),
        timeout=DEADLINE,
        interval=0.05,
    )
    assert paid["total"] == 2500

    refunded = await call(session, "POST", f"{payments}/payments/{payment['id']}/refund", customer)
    assert refunded["status"] == "refunded"
    await eventually(
        order_status_is(session, orders, customer, order["id"], "refunded"),
        timeout=DEADLINE,
        interval=0.05,
    )

    # A refunded payment no longer holds the order; the order's own state refuses a new one.
    again = await call(
        session,
        "POST",
        f"{payments}/payments",
        {**customer, "Idempotency-Key": "again"},
        {"order_id": order["id"], "card": CARD},
        409,
    )
    assert again["code"] == "order_not_pending"


async def test_someone_elses_order_is_404_through_the_order_service(
    services: Services,
    session: aiohttp.ClientSession,
    customer: dict[str, str],
    make_token: Callable[..., str],
) -> None:
    orders = (await services.start_order()).url
    payments = await services.start_payment(orders)
    order = await create_order(session, orders, customer)
    stranger = {"Authorization": f"Bearer {make_token(sub='cust-stranger')}"}
    problem = await call(
        session,
        "POST",
        f"{payments}/payments",
        {**stranger, "Idempotency-Key": "k"},
        {"order_id": order["id"], "card": CARD},
        404,
    )
    assert problem["code"] == "not_found"


async def test_order_is_paid_after_its_consumer_comes_back(
    services: Services,
    session: aiohttp.ClientSession,
    customer: dict[str, str],
    events: aioredis.Redis,
) -> None:
    first = await services.start_order()
    order = await create_order(session, first.url, customer)
    await services.stop(first)

    # The order service's API is up again but its consumer is not: the payment still goes
    # through, and its event waits in the stream.
    api = await services.start_order(consumer=False)
    api_only = api.url
    payments = await services.start_payment(api_only)
    payment = await pay(session, payments, customer, order["id"])
    await eventually(
        lambda: stream_types(events, "events:payments"), timeout=DEADLINE, interval=0.05
    )
    pending = await call(session, "GET", f"{api_only}/orders/{order['id']}", customer)
    assert pending["status"] == "pending"
    await services.stop(api)

    restarted = (await services.start_order()).url
    paid = await eventually(
        order_status_is(session, restarted, customer, order["id"], "paid"),
        timeout=DEADLINE,
        interval=0.05,
    )
    assert paid["id"] == order["id"]
    got = await call(session, "GET", f"{payments}/payments/{payment['id']}", customer)
    assert got["status"] == "succeeded"


async def test_order_changed_before_its_payment_landed_is_refunded(
    services: Services,
    session: aiohttp.ClientSession,
    customer: dict[str, str],
    events: aioredis.Redis,
) -> None:
    api = await services.start_order(consumer=False)
    api_only = api.url
    payments = await services.start_payment(api_only)
    order = await create_order(session, api_only, customer)
    payment = await pay(session, payments, customer, order["id"])

    # The customer edits the order after paying, before the order service saw the payment.
    changed_items = [{**ITEMS[0], "quantity": 3}]
    changed = await call(
        session, "PATCH", f"{api_only}/orders/{order['id']}", customer, {"items": changed_items}
    )
    assert (changed["status"], changed["total"]) == ("pending", 3750)
    await services.stop(api)

    restarted = (await services.start_order()).url

    async def refunded() -> Any:
        got = await call(session, "GET", f"{payments}/payments/{payment['id']}", customer)
        return got if got["status"] == "refunded" else None

    final = await eventually(refunded, timeout=DEADLINE, interval=0.05)
    assert final["failure_code"] == "order_changed"
    assert await stream_types(events, "events:orders") == ["order.payment_rejected"]
    # The order was never paid, so no payment.refunded is published for it ...
    assert await stream_types(events, "events:payments") == ["payment.succeeded"]
    current = await call(session, "GET", f"{restarted}/orders/{order['id']}", customer)
    assert current["status"] == "pending"
    rejected = [json.loads(f["data"]) for _id, f in await events.xrange("events:orders")]
    assert rejected[0]["payment_id"] == payment["id"]

    # ... and the changed order can be paid again (the payment service reads it anew).
    payments_again = await services.start_payment(restarted)
    second = await pay(session, payments_again, customer, order["id"])
    assert second["amount"] == 3750
    await eventually(
        order_status_is(session, restarted, customer, order["id"], "paid"),
        timeout=DEADLINE,
        interval=0.05,
    )


async def test_order_edited_to_the_same_total_before_its_payment_landed_is_refunded(
    services: Services,
    session: aiohttp.ClientSession,
    customer: dict[str, str],
    events: aioredis.Redis,
) -> None:
    api = await services.start_order(consumer=False)
    payments = await services.start_payment(api.url)
    order = await create_order(session, api.url, customer)
    payment = await pay(session, payments, customer, order["id"])

    # Other items, same total and currency: only the order's version tells the change apart.
    other_items = [{"sku": "book-2", "name": "Another book", "quantity": 1, "unit_price": 2500}]
    changed = await call(
        session, "PATCH", f"{api.url}/orders/{order['id']}", customer, {"items": other_items}
    )
    assert (changed["total"], changed["currency"]) == (order["total"], order["currency"])
    await services.stop(api)

    restarted = (await services.start_order()).url

    async def refunded() -> Any:
        got = await call(session, "GET", f"{payments}/payments/{payment['id']}", customer)
        return got if got["status"] == "refunded" else None

    final = await eventually(refunded, timeout=DEADLINE, interval=0.05)
    assert final["failure_code"] == "order_changed"
    [(_id, succeeded)] = await events.xrange("events:payments")
    assert json.loads(succeeded["data"])["order_updated_at"] == order["updated_at"]
    assert await stream_types(events, "events:orders") == ["order.payment_rejected"]
    current = await call(session, "GET", f"{restarted}/orders/{order['id']}", customer)
    assert (current["status"], current["items"]) == ("pending", other_items)
