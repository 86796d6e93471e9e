"""The end-to-end suite: the whole stack started through the same code as ``nox -s dev``
(svc_gateway.devstack.Stack), on free ports, reached over real sockets through the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from svc_core.testing import free_port
from svc_gateway.devstack import SERVICES, Stack, StackOptions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def stack(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Every service and the local gateway in this test's loop; this test's Redis database."""
    options = StackOptions(
        gateway_port=free_port(),
        ports={name: [free_port()] for name in SERVICES},
        root=ROOT,
        dev_dir=tmp_path / "dev",
        environ={
            "ENVIRONMENT": "development",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": "false",
        },
        service_env={"BCRYPT_ROUNDS": "4", "UVLOOP": "false"},
    )
    running = Stack(options)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def gateway_url(stack: Stack) -> str:
    return stack.gateway_url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session
