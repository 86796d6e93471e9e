from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from svc_core import EventBus
from svc_core.redis import open_redis
from svc_order import OrderSettings, create_app


@pytest.fixture
def order_settings(make_settings: Callable[..., Any]) -> OrderSettings:
    # fast retries, so a failed event is retried well inside a test's polling deadline
    return make_settings(OrderSettings, events_retry_after=0.1)


@pytest.fixture
async def client(aiohttp_client: Any, order_settings: OrderSettings) -> TestClient:
    return await aiohttp_client(create_app(order_settings))


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[EventBus]:
    """An event bus on the test's Redis: the payment service's side of the contract."""
    redis = open_redis(redis_url)
    yield EventBus(redis)
    await redis.aclose()
