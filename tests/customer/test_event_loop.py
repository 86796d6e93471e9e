"""bcrypt runs off the event loop: the service keeps answering while logins hash."""

from __future__ import annotations

import asyncio

import pytest

from svc_core.testing import eventually
from tests.customer.conftest import PASSWORD, register, services


@pytest.mark.slow
async def test_health_is_answered_while_real_bcrypt_logins_are_in_flight(start):
    # Real cost (12, ~250 ms a check here) on one hashing thread: four logins keep the pool
    # busy for about a second, one after another.
    client = await start(bcrypt_rounds=12, bcrypt_threads=1)
    account = await register(client)
    hasher = services(client).hasher

    async def login() -> int:
        resp = await client.post(
            "/auth/login", json={"username": account.username, "password": PASSWORD}
        )
        return resp.status

    logins = [asyncio.create_task(login()) for _ in range(4)]

    async def hashing() -> bool:
        return hasher.in_flight > 0

    assert await eventually(hashing, timeout=5.0, interval=0.005)
    health = await client.get("/health")
    assert health.status == 200
    assert await health.json() == {"status": "ok"}
    # The loop answered while bcrypt was still busy with the logins.
    assert not all(task.done() for task in logins)
    assert hasher.in_flight > 0
    assert await asyncio.gather(*logins) == [200] * 4
