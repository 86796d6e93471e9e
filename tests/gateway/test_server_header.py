"""The gateway's own answers name no product versions (issue 11 item 10): aiohttp's default
``Server: Python/3.x aiohttp/3.x`` is replaced by ``svc-gateway``. A proxied response keeps what
its upstream sent (the services send ``Server: svc``), as Kong does. And a 502 is logged."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from svc_core.testing import free_port
from tests.gateway.conftest import gateway_of

VERSIONED = re.compile(r"python|aiohttp|\d", re.IGNORECASE)


def assert_versionless(headers: Any) -> None:
    server = headers.get("Server")
    assert server == "svc-gateway", server
    assert not VERSIONED.search(server)


async def test_refusals_of_the_gateway_say_no_version(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    for response in [
        await gateway.get("/orders"),  # 401: no token
        await gateway.get("/nowhere", headers=auth_header()),  # 404: no route
        await gateway.post(  # 413: over the JSON routes' 1 MiB
            "/orders", data=io.BytesIO(b"x" * (2 * 1024 * 1024)), headers=auth_header()
        ),
    ]:
        assert response.status in (401, 404, 413), response.status
        assert_versionless(response.headers)


async def test_a_502_says_no_version_and_is_logged(
    make_gateway: Any, auth_header: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client = await make_gateway(ORDER_TARGETS=f"127.0.0.1:{port}")
    balancer = gateway_of(client).balancers["order-upstream"]
    await balancer.stop_watching()
    balancer.states[0].healthy = True
    token = auth_header()
    with caplog.at_level(logging.WARNING, logger="svc_gateway"):
        response = await client.get("/orders", headers=token)
    assert response.status == 502
    assert_versionless(response.headers)
    # nginx logs a failed connect; a silent 502 left nothing to go on
    (record,) = [r for r in caplog.records if r.getMessage() == "no upstream answered"]
    assert record.__dict__["service"] == "order"
    assert record.__dict__["error"] == "ClientConnectorError"
    assert str(port) in record.__dict__["detail"]
    assert token["Authorization"].split()[1] not in caplog.text


async def test_a_request_the_parser_refuses_says_no_version(gateway: TestClient[Any, Any]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(b"GET /orders HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines if line)
    assert status_line.split()[1] == "400", status_line
    # aiohttp writes this answer without a Server header at all: nothing to name a version with
    assert not VERSIONED.search(headers.get("Server", "")), headers
