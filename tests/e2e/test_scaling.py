"""Two instances of a service behind the gateway: the dev stack's ports are settings, each
instance becomes an upstream target, and requests are balanced over both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from svc_devstack.stack import Stack, services
from tests.e2e.conftest import running_stack
from tests.e2e.test_journey import call, sign_up


@pytest.fixture
async def scaled(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(redis_url, tmp_path, twice=["order"]) as stack:
        yield stack


async def test_two_order_instances_share_the_work_and_the_data(
    scaled: Stack, http: aiohttp.ClientSession
) -> None:
    gw = scaled.gateway_url
    assert len(scaled.urls["order"]) == 2
    _, token = await sign_up(http, gw)
    body = {"currency": "EUR", "items": [{"sku": "a", "name": "A", "quantity": 1, "unit_price": 1}]}
    ids = []
    for _ in range(4):
        status, order, _ = await call(http, "POST", f"{gw}/orders", token, json=body)
        assert status == 201, order
        ids.append(order["id"])
    for order_id in ids:  # whichever instance answers sees every order (one database)
        status, _, _ = await call(http, "GET", f"{gw}/orders/{order_id}", token)
        assert status == 200
    for url in scaled.urls["order"]:
        async with http.get(f"{url}/metrics") as response:
            text = await response.text()
        served = [line for line in text.splitlines() if 'method="POST"' in line and
                  'route="/orders"' in line and "_total" in line]  # fmt: skip
        assert served, f"{url} served no POST /orders"


@pytest.fixture
async def everything_twice(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Two instances of every registered service behind the gateway (one process, one Redis,
    one in-memory MongoDB per service, one file directory: what each pair shares in production)."""
    async with running_stack(redis_url, tmp_path, twice=services()) as stack:
        yield stack


async def test_the_platform_with_two_instances_of_every_service(
    everything_twice: Stack, http: aiohttp.ClientSession
) -> None:
    import uuid

    from svc_core.testing import eventually

    gw = everything_twice.gateway_url
    assert all(len(urls) == 2 for urls in everything_twice.urls.values())
    _, token = await sign_up(http, gw)

    # payments exactly once, whichever payment and order instances answer
    body = {"currency": "EUR", "items": [{"sku": "a", "name": "A", "quantity": 2, "unit_price": 5}]}
    status, order, _ = await call(http, "POST", f"{gw}/orders", token, json=body)
    assert status == 201, order
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    pay = {"order_id": order["id"], "card": card}
    answers = [
        await call(http, "POST", f"{gw}/payments", token, json=pay, headers=key) for _ in range(4)
    ]
    assert {a[0] for a in answers} == {201}
    assert len({a[1]["id"] for a in answers}) == 1  # one payment, replayed
    status, page, _ = await call(http, "GET", f"{gw}/payments?order_id={order['id']}", token)
    assert status == 200
    assert len(page["items"]) == 1

    async def paid() -> bool:
        _, current, _ = await call(http, "GET", f"{gw}/orders/{order['id']}", token)
        return bool(current["status"] == "paid")

    await eventually(paid, timeout=5)

    # a file uploaded through one instance reads back through either
    content = uuid.uuid4().bytes * 1000
    form = aiohttp.FormData()
    form.add_field("file", content, filename="data.bin", content_type="application/octet-stream")
    status, uploaded, _ = await call(http, "POST", f"{gw}/files", token, data=form)
    if status == 415:  # random bytes are no allowed type: send text instead
        form = aiohttp.FormData()
        content = ("line\n" * 2000).encode()
        form.add_field("file", content, filename="data.txt", content_type="text/plain")
        status, uploaded, _ = await call(http, "POST", f"{gw}/files", token, data=form)
    assert status == 201, uploaded
    for _ in range(4):  # round robin: both instances serve it
        async with http.get(
            f"{gw}/files/{uploaded['id']}/content", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
            assert await response.read() == content

    # a chat message posted on one instance reaches sockets on both
    status, room, _ = await call(http, "POST", f"{gw}/chat/rooms", token, json={"name": "two"})
    assert status == 201, room
    sockets = [await http.ws_connect(f"{gw}/chat/ws?jwt={token}") for _ in range(2)]
    try:
        for ws in sockets:
            await ws.send_json({"type": "join", "room_id": room["id"]})
            while (await ws.receive_json(timeout=10))["type"] != "joined":
                pass
        status, message, _ = await call(
            http, "POST", f"{gw}/chat/rooms/{room['id']}/messages", token, json={"body": "hi"}
        )
        assert status == 201, message
        for ws in sockets:
            while True:
                frame = await ws.receive_json(timeout=10)
                if frame["type"] == "message":
                    assert frame["message"]["id"] == message["id"]
                    break
    finally:
        for ws in sockets:
            await ws.close()
    # every instance of every service took part (/ready is polled on each by the stack; the
    # gateway's round robin sent traffic to both of the services used above)
    for name in ("order", "payment", "files", "chat"):
        served = 0
        for url in everything_twice.urls[name]:
            async with http.get(f"{url}/metrics") as response:
                text = await response.text()
            served += any(
                line.startswith("http_requests_total{")
                and not any(f'route="{probe}"' in line for probe in ("/health", "/ready"))
                for line in text.splitlines()
            )
        assert served == 2, name
