"""request-size-limiting (K:kong/plugins/request-size-limiting/handler.lua): 1 MiB on the JSON
routes. Errors come from kong.response.error: {"message": ..., "request_id": ...}."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from tests.gateway.conftest import recorded

MIB = 1024 * 1024


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b"x" * part


async def test_declared_length_over_the_limit_is_413(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """handler.lua: Content-Length > allowed_payload_size * 2^20 -> 413
    "Request size limit exceeded", before the body is read or the upstream called."""
    response = await gateway.post("/auth/login", data=io.BytesIO(b"x" * (MIB + 1)))
    assert response.status == 413
    body = json.loads(await response.read())
    assert body["message"] == "Request size limit exceeded"
    assert set(body) == {"message", "request_id"}
    assert recorded(upstream) == []


async def test_expect_100_continue_gets_417(gateway: TestClient[Any, Any]) -> None:
    """handler.lua check_size: with ``Expect: 100-continue`` the status is 417."""
    response = await gateway.post(
        "/auth/login", data=io.BytesIO(b"x" * (MIB + 1)), headers={"Expect": "100-continue"}
    )
    assert response.status == 417
    assert json.loads(await response.read())["message"] == "Request size limit exceeded"


async def test_exactly_the_limit_passes(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """The limit is inclusive: ``length > allowed`` is refused, ``==`` passes."""
    response = await gateway.post("/auth/login", data=io.BytesIO(b"x" * MIB))
    assert response.status == 200
    assert recorded(upstream)[-1]["body_length"] == MIB


async def test_chunked_body_over_the_limit_is_413(gateway: TestClient[Any, Any]) -> None:
    """Without Content-Length Kong reads the body and checks its size; the local gateway
    counts while streaming and answers the same 413."""
    response = await gateway.post("/auth/login", data=chunks(MIB + 1))
    assert response.status == 413
    assert json.loads(await response.read())["message"] == "Request size limit exceeded"


async def test_chunked_body_under_the_limit_is_streamed_through(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    response = await gateway.post("/auth/login", data=chunks(MIB - 10))
    assert response.status == 200
    assert recorded(upstream)[-1]["body_length"] == MIB - 10
