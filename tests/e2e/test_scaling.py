"""Two instances of a service behind the gateway: the dev stack's ports are settings, each
instance becomes an upstream target, and requests are balanced over both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from svc_core.testing import free_port
from svc_gateway.devstack import SERVICES, Stack, StackOptions
from tests.e2e.conftest import ROOT
from tests.e2e.test_journey import call, sign_up


@pytest.fixture
async def scaled(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    ports = {name: [free_port()] for name in SERVICES}
    ports["order"] = [free_port(), free_port()]
    stack = Stack(
        StackOptions(
            gateway_port=free_port(),
            ports=ports,
            root=ROOT,
            dev_dir=tmp_path / "dev",
            environ={"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "ACCESS_LOG": "false"},
            service_env={"BCRYPT_ROUNDS": "4", "UVLOOP": "false"},
        )
    )
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


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
