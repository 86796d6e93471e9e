"""Fixtures for the web service's tests: its app with ``make_settings``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from svc_web import WebSettings, create_app


@pytest.fixture
def web_settings(make_settings: Callable[..., Any]) -> WebSettings:
    settings: WebSettings = make_settings(WebSettings, gateway_url="https://api.example.com")
    return settings


@pytest.fixture
async def client(aiohttp_client: Any, web_settings: WebSettings) -> Any:
    return await aiohttp_client(create_app(web_settings))
