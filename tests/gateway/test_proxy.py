"""Proxying: bodies streamed both ways, the headers Kong sets upstream, WebSocket relaying
(shared/kong.md §6: OSS proxies the upgrade as an opaque stream after the handshake plugins)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from tests.gateway.conftest import FIRST_CHUNK, RELEASE, recorded


async def test_path_and_query_reach_the_upstream_unchanged(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """strip_path: false (K:kong/router): the service sees exactly the public path."""
    response = await gateway.get("/orders/abc%20d?status=paid&limit=5", headers=auth_header())
    assert response.status == 200
    assert recorded(upstream)[-1]["path"] == "/orders/abc%20d?status=paid&limit=5"


@pytest.mark.parametrize(
    "path",
    [
        "/orders/%00",
        "/orders/%0A",
        "/orders/a%0D%0Ab",
        "/cache/%7F",
        "/cache/%C3%A9t%C3%A9",
        "/orders/%E2%82%AC%20x?q=%26%00",
    ],
)
async def test_control_and_unicode_paths_reach_the_service_still_encoded(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any, path: str
) -> None:
    """Kong proxies the path and sets X-Forwarded-Path from ``var.request_uri`` (query cut
    off): the raw, still percent-encoded path (K:kong/runloop/handler.lua, forwarded_path).
    Decoded, %00 / %0A could not even be a header value, so the service answers, not the
    gateway."""
    response = await gateway.get(URL(path, encoded=True), headers=auth_header())
    assert response.status == 200, await response.text()
    seen = recorded(upstream)[-1]
    assert seen["path"] == path
    assert seen["headers"]["X-Forwarded-Path"] == path.partition("?")[0]


async def test_upstream_request_headers(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """Kong sets Host to the service host (the upstream name; preserve_host false), adds
    X-Forwarded-* and X-Real-IP, and drops hop-by-hop headers."""
    await gateway.get("/orders", headers=auth_header() | {"Connection": "keep-alive, X-Drop"})
    seen = recorded(upstream)[-1]["headers"]
    assert seen["Host"] == "order-upstream"
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Real-IP"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Path"] == "/orders"
    assert seen["X-Forwarded-Port"] == str(gateway.port)


async def test_response_is_streamed_not_buffered(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """The upstream sends one chunk and waits until the client has it: a gateway that buffered
    the whole body would never deliver it (the wait_for guards against hanging)."""
    async with gateway.get("/orders/slow", headers=auth_header()) as response:
        first = await asyncio.wait_for(response.content.readexactly(12), 10)
        assert first == b"first-chunk;"
        upstream.app[RELEASE].set()
        assert await response.read() == b"rest"


async def test_request_body_is_streamed_not_buffered(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """The client sends its second chunk only once the upstream has the first."""

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        await asyncio.wait_for(upstream.app[FIRST_CHUNK].wait(), 10)
        yield b"b" * 1000

    response = await gateway.post("/orders/upload", data=body(), headers=auth_header())
    assert response.status == 200
    assert await response.json() == {"received": 2000}


async def test_large_response_arrives_intact(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    async with gateway.get("/orders/stream", params={"chunks": "64"}, headers=auth_header()) as r:
        data = await r.read()
    expected = b"".join(bytes([i]) * 65536 for i in range(64))
    assert hashlib.sha256(data).digest() == hashlib.sha256(expected).digest()


async def test_websocket_frames_cross_both_ways_and_close_codes_are_kept(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    """The jwt and the other plugins run once, on the handshake; frames then flow both ways,
    the subprotocol is negotiated end to end and the upstream's close code reaches the client."""
    async with gateway.ws_connect("/cache/ws", headers=auth_header(), protocols=("chat.v1",)) as ws:
        assert ws.protocol == "chat.v1"
        await ws.send_str("hello")
        assert (await ws.receive()).data == "echo:hello"
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive()).data == b"echo:\x00\x01"
        await ws.send_str("close-4001")
        message = await ws.receive()
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4001


async def test_websocket_handshake_needs_a_token(gateway: TestClient[Any, Any]) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gateway.ws_connect("/cache/ws")
    assert refused.value.status == 401


async def test_websocket_refused_by_the_upstream_keeps_its_status(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gateway.ws_connect("/cache/ws", params={"refuse": "1"}, headers=auth_header())
    assert refused.value.status == 401
