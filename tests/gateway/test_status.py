"""prometheus (K:kong/plugins/prometheus): metrics are served on the status listener, never on
the proxy port; kong_http_requests_total counts per service, route and status code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.gateway.conftest import gateway_of


async def test_metrics_on_the_status_listener_only(
    gateway: TestClient[Any, Any],
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
    auth_header: Any,
) -> None:
    await gateway.get("/orders", headers=auth_header())
    await gateway.get("/orders")
    assert (await gateway.get("/metrics")).status == 404  # not routed on the proxy
    status = await aiohttp_client(gateway_of(gateway).status_app())
    text = await (await status.get("/metrics")).text()
    assert 'kong_http_requests_total{service="order",route="orders",code="200"' in text
    assert 'kong_http_requests_total{service="order",route="orders",code="401"' in text
    assert 'kong_upstream_target_health{upstream="order-upstream"' in text
