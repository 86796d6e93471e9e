"""api.md "request id": a client-sent X-Request-ID of 1-200 visible ASCII characters (``!`` to
``~``) is kept, forwarded and echoed; any other value is replaced, at the gateway, by a
generated id that the upstream sees and the client gets back (issue 11, finding 5).

Kong's correlation-id alone keeps and echoes ANY value (K:kong/plugins/correlation-id/
handler.lua); kong.yml's pre-function drops an invalid one first, so correlation-id generates.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.gateway.conftest import recorded


def is_generated(value: str) -> bool:
    return str(uuid.UUID(value)) == value


@pytest.mark.parametrize(
    "value", ["a", "x" * 200, "!~", "req-1/2:3?4#5", "\"quoted\"'and'<more>{}[]|\\^`"]
)
async def test_a_valid_id_is_kept_forwarded_and_echoed(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any, value: str
) -> None:
    response = await gateway.get("/orders", headers=auth_header() | {"X-Request-ID": value})
    assert response.status == 200
    assert response.headers["X-Request-ID"] == value
    assert recorded(upstream)[-1]["headers"]["X-Request-ID"] == value


@pytest.mark.parametrize(
    "value",
    ["", "x" * 201, "x" * 5000, "with space", "tab\there", "caf\u00e9", " padded-inside x"],
    ids=["empty", "201", "5000", "space", "tab", "non-ascii", "inner-space"],
)
async def test_any_other_id_is_replaced_by_a_generated_one(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any, value: str
) -> None:
    """Before the fix the gateway forwarded and echoed these as they were."""
    response = await gateway.get("/orders", headers=auth_header() | {"X-Request-ID": value})
    assert response.status == 200
    echoed = response.headers["X-Request-ID"]
    assert is_generated(echoed)
    assert recorded(upstream)[-1]["headers"]["X-Request-ID"] == echoed


async def test_a_repeated_header_is_replaced(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """Two X-Request-ID headers are one value "a, b" to nginx's ``$http_x_request_id``: not
    valid, so neither copy is forwarded."""
    headers = [("X-Request-ID", "a"), ("X-Request-ID", "b"), *auth_header().items()]
    response = await gateway.get("/orders", headers=headers)
    echoed = response.headers["X-Request-ID"]
    assert is_generated(echoed)
    assert recorded(upstream)[-1]["headers"]["X-Request-ID"] == echoed


async def test_raw_bytes_that_are_not_utf8_are_replaced(
    gateway: TestClient[Any, Any], upstream: TestServer, make_token: Any
) -> None:
    """Bytes a client library would not send: Latin-1 / invalid UTF-8 over a raw socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        b"GET /orders HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
        b"Authorization: Bearer " + make_token().encode() + b"\r\n"
        b"X-Request-ID: abc\xff\xfe\x80def\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head = answer.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 200")
    echoed = next(
        line.split(b": ", 1)[1].decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"x-request-id:")
    )
    assert is_generated(echoed)
    assert recorded(upstream)[-1]["headers"]["X-Request-ID"] == echoed


async def test_the_gateways_own_refusals_carry_a_valid_id(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    """Kong runs correlation-id's header_filter for every response of the request, also when
    the pre-function or jwt answered: a valid client id is echoed, an invalid one never is."""
    token = make_token()
    for authorization in (f"Bearer {token}==", f"Bearer\t{token}", "Bearer x"):
        kept = await gateway.get(
            "/orders", headers={"Authorization": authorization, "X-Request-ID": "mine"}
        )
        assert kept.status == 401
        assert kept.headers["X-Request-ID"] == "mine"
        replaced = await gateway.get(
            "/orders", headers={"Authorization": authorization, "X-Request-ID": "x" * 300}
        )
        assert replaced.status == 401
        assert is_generated(replaced.headers["X-Request-ID"])
        assert json.loads(await replaced.read()) == {"message": "Unauthorized"}
