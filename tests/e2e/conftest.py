"""The end-to-end suite: the whole stack started through the same code as ``nox -s dev``
(svc_devstack.stack.Stack), on free ports, reached over real sockets through the gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import aiohttp
import pytest

from svc_core.testing import free_port
from svc_devstack.stack import Stack, StackOptions, services

ROOT = Path(__file__).resolve().parents[2]


def service_env(tmp_path: Path) -> dict[str, str]:
    """What every e2e stack gives its services: fast bcrypt, the asyncio loop, and the local
    file backend's bytes under the test's own directory (never the repository's var/)."""
    return {
        "BCRYPT_ROUNDS": "4",
        "UVLOOP": "false",
        "FILES_LOCAL_ROOT": str(tmp_path / "files"),
    }


@contextlib.asynccontextmanager
async def running_stack(
    redis_url: str,
    tmp_path: Path,
    *,
    twice: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    status: bool = False,
) -> AsyncIterator[Stack]:
    """Every service and the local gateway in this test's loop, on free ports, with this test's
    Redis database: one instance of each service, two of those named in ``twice``; ``environ``
    adds to (or overrides) what every service is given; ``status``: the gateway's status
    listener too (Kong's /metrics)."""
    doubled = set(twice)
    options = StackOptions(
        gateway_port=free_port(),
        status_port=free_port() if status else 0,
        ports={
            name: [free_port() for _ in range(2 if name in doubled else 1)] for name in services()
        },
        root=ROOT,
        dev_dir=tmp_path / "dev",
        environ={"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "ACCESS_LOG": "false"}
        | dict(environ or {}),
        service_env=service_env(tmp_path),
    )
    running = Stack(options)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def stack(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The whole stack, one instance of each service."""
    async with running_stack(redis_url, tmp_path) as running:
        yield running


@pytest.fixture
def gateway_url(stack: Stack) -> str:
    return stack.gateway_url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session
