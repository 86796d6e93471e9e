"""Fixtures for the customer service's tests: an app with cheap bcrypt and helpers to drive it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from svc_core.testing import KeyPair, random_email, random_username
from svc_customer import CustomerSettings, create_app
from svc_customer.domain import Services
from svc_customer.parts import PARTS

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def signing_keys() -> KeyPair:
    """The customer service's signing key in these tests (generating one per app is slow)."""
    return KeyPair.generate()


@pytest.fixture
def customer_settings(
    make_settings: Callable[..., Any], signing_keys: KeyPair
) -> Callable[..., CustomerSettings]:
    """``customer_settings(**overrides)``: test settings with bcrypt cost 4."""

    def make(**overrides: Any) -> CustomerSettings:
        values: dict[str, Any] = {
            "bcrypt_rounds": 4,
            "password_pepper": "test-pepper",
            "jwt_private_key": signing_keys.private_pem,
        }
        values.update(overrides)
        settings: CustomerSettings = make_settings(CustomerSettings, **values)
        return settings

    return make


@pytest.fixture
def start(
    aiohttp_client: Any, customer_settings: Callable[..., CustomerSettings]
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    """``await start(**settings_overrides)`` → a test client of a fresh customer service."""

    async def run(**overrides: Any) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(customer_settings(**overrides))
        )
        return client

    return run


@pytest.fixture
async def client(start: Callable[..., Awaitable[TestClient[Any, Any]]]) -> TestClient[Any, Any]:
    return await start()


class Account:
    """A registered customer and what logging in gave it."""

    def __init__(self, client: TestClient[Any, Any], username: str, email: str, password: str):
        self.client = client
        self.username = username
        self.email = email
        self.password = password
        self.id = ""

    async def login(self, identifier: str | None = None, password: str | None = None) -> Any:
        resp = await self.client.post(
            "/auth/login",
            json={"username": identifier or self.username, "password": password or self.password},
        )
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def register(
    client: TestClient[Any, Any],
    *,
    username: str | None = None,
    email: str | None = None,
    password: str = PASSWORD,
) -> Account:
    account = Account(client, username or random_username(), email or random_email(), password)
    resp = await client.post(
        "/auth/register",
        json={"username": account.username, "email": account.email, "password": password},
    )
    assert resp.status == 201, await resp.text()
    account.id = (await resp.json())["id"]
    return account


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    """Assert ``resp`` is a problem+json with ``status`` and ``code``; return its body."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/problem+json"
    data: dict[str, Any] = await resp.json(content_type=None)
    assert data["code"] == code, data
    assert data["request_id"] == resp.headers["X-Request-ID"]
    return data


def services(client: TestClient[Any, Any]) -> Services:
    """The running app's parts (repository, sessions, throttles...)."""
    return PARTS.of(client.app)
