"""request-size-limiting (K:kong/plugins/request-size-limiting/handler.lua): 1 MiB on the JSON
routes. Errors come from kong.response.error: {"message": ..., "request_id": ...}."""

from __future__ import annotations

import asyncio
import contextlib
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


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One response from a raw socket: status line, headers (lower-cased names), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines if line)
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), 10)
    return status.encode(), headers, body


async def open_raw(client: TestClient[Any, Any], head: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head.replace("\n", "\r\n").encode())
    await writer.drain()
    return reader, writer


async def rest_of_connection(reader: asyncio.StreamReader, writer: Any, body: bytes) -> bytes:
    """Send what a client that ignores the answer would send, then read until the gateway
    closes (the deadline only guards against a hang)."""
    with contextlib.suppress(ConnectionError):
        writer.write(body)
        await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def expect_head(path: str, length: int, extra: str = "") -> str:
    return (
        f"POST {path} HTTP/1.1\nHost: gw\nContent-Type: application/json\n"
        f"Content-Length: {length}\nExpect: 100-continue\n{extra}\n"
    )


async def test_expect_100_continue_over_the_limit_is_one_417_then_close(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """handler.lua: 417 is decided from Content-Length before any body is asked for, so the
    client never gets ``100 Continue``; the connection then closes, and body bytes a client
    sends anyway are never parsed as a request."""
    reader, writer = await open_raw(gateway, expect_head("/auth/login", MIB + 1))
    status, headers, body = await read_response(reader)
    assert status == b"HTTP/1.1 417 Expectation Failed"
    assert json.loads(body)["message"] == "Request size limit exceeded"
    assert headers["connection"] == "close"
    after = await rest_of_connection(reader, writer, b"GET /orders HTTP/1.1\r\n\r\n" * 50)
    assert after == b""
    assert recorded(upstream) == []


async def test_expect_100_continue_refused_by_jwt_gets_no_100(
    gateway: TestClient[Any, Any],
) -> None:
    """Any plugin's refusal is final: 401 without a 100 first, then close."""
    reader, writer = await open_raw(gateway, expect_head("/orders", 2))
    status, _, body = await read_response(reader)
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert json.loads(body) == {"message": "Unauthorized"}
    assert await rest_of_connection(reader, writer, b"{}") == b""


async def test_expect_100_continue_under_the_limit_gets_100_then_the_answer(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """Once the plugins passed, the gateway sends 100 and streams the body upstream; the
    upstream request carries no Expect (nginx's proxy clears it)."""
    reader, writer = await open_raw(gateway, expect_head("/auth/login", 2))
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"{}")
    await writer.drain()
    status, _, body = await read_response(reader)
    writer.close()
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)["body_length"] == 2
    assert "Expect" not in recorded(upstream)[-1]["headers"]


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


async def test_files_take_bodies_past_the_json_limit_streamed(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """/files has its own, larger, route-level limit (above the file service's 50 MiB), and
    its body streams to the service: the upstream has the first chunk before the rest is sent
    (request_buffering: false in kong.yml)."""
    from tests.gateway.conftest import FIRST_CHUNK

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * (2 * MIB)
        await asyncio.wait_for(upstream.app[FIRST_CHUNK].wait(), 10)
        async for chunk in chunks(3 * MIB):
            yield chunk

    response = await gateway.post("/files", data=body(), headers=auth_header())
    assert response.status == 200, await response.text()
    assert await response.json() == {"received": 5 * MIB}


async def test_files_declared_past_the_gateway_limit_is_413(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """Refused on the declared length alone, before any body byte is read."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    head = (
        "POST /files HTTP/1.1\r\n"
        f"Host: {gateway.host}\r\n"
        f"Authorization: {auth_header()['Authorization']}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {64 * MIB + 1}\r\n\r\n"
    )
    writer.write(head.encode())
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"413"
    assert recorded(upstream) == []
