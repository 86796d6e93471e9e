"""Fixtures for the cache service's tests: an app on this test's Redis and per-customer headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from svc_cache import CacheSettings, create_app


@pytest.fixture
def cache_settings(make_settings: Callable[..., Any]) -> CacheSettings:
    settings: CacheSettings = make_settings(CacheSettings)
    return settings


@pytest.fixture
async def client(aiohttp_client: Any, cache_settings: CacheSettings) -> Any:
    return await aiohttp_client(create_app(cache_settings))


def assert_problem(body: dict[str, Any], status: int, code: str) -> None:
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail", "request_id"} <= body.keys()
