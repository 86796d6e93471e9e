"""Paths as Kong routes and forwards them (issue 11, finding 10: ``GET /cache/%2e``).

K:kong/router/utils.lua ``strip_uri_args`` normalises the raw path with
K:kong/tools/uri.lua ``normalize(uri, true)``; the router matches the result and the upstream
path is that result, ``escape``-d (K:kong/runloop/handler.lua). ``X-Forwarded-Path`` keeps the
raw path. The unit cases are Kong's own (spec/01-unit/18-tools_uri_spec.lua at 3.9.1).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from svc_gateway.paths import escape, normalize
from tests.gateway.conftest import recorded


async def raw_get(client: TestClient[Any, Any], target: str, headers: dict[str, str]) -> bytes:
    """GET ``target`` exactly as written (client libraries normalise dot segments first)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    lines = [f"GET {target} HTTP/1.1", "Host: gw", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer.partition(b"\r\n")[0]


def lua(text: str) -> str:
    """A Lua (byte) string as the module holds it: one character per byte."""
    return text.encode().decode("latin-1")


@pytest.mark.parametrize(
    ("raw", "merge", "expected"),
    [
        ("", False, ""),
        ("/", False, "/"),
        ("/a/", False, "/a/"),
        ("/a/b/c", False, "/a/b/c"),
        ("/a%2Fb%2Fc/", False, "/a%2Fb%2Fc/"),
        (
            "/%20%21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D",
            False,
            "/ %21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D",
        ),
        ("/a%2fb%2fc/", False, "/a%2Fb%2Fc/"),
        ("/f%6f%6f", False, "/foo"),
        ("/%6B%6f%6e%67", False, "/kong"),
        ("/%2E", False, "/"),
        ("//", False, "//"),
        ("/./", False, "/"),
        ("/.", False, "/"),
        ("/..", False, "/"),
        ("/../", False, "/"),
        ("/////", False, "/////"),
        ("/./.././../", False, "/"),
        ("/a/b/c/./../../g", False, "/a/g"),
        ("mid/content=5/../6", False, "mid/6"),
        ("//", True, "/"),
        ("/////", True, "/"),
        ("/a//b//", True, "/a/b/"),
        ("/endel%C3%B8st", False, lua("/endeløst")),
        (
            "/%C3%A4/a/%2e./a%2E//a/%2e/./a/../a/%2e%2E/%5f%99%af%2f%2F",
            True,
            lua("/ä/a./a/_") + "\x99\xaf%2F%2F",
        ),
    ],
)
def test_normalize_as_kong(raw: str, merge: bool, expected: str) -> None:
    assert normalize(raw, merge) == expected


def test_escape_as_kong() -> None:
    safe = "/!#$%&'()*+,/:;=?@[]ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    assert escape(safe) == safe
    assert escape("/a b/c d") == "/a%20b/c%20d"
    assert escape(lua("/a😀")) == "/a%F0%9F%98%80"
    assert escape(lua("/endeløst")) == "/endel%C3%B8st"


@pytest.mark.parametrize(
    ("raw", "host", "upstream_path"),
    [
        ("/cache/%2e", "cache-upstream", "/cache/"),
        ("/cache/.", "cache-upstream", "/cache/"),
        ("/cache/%2E%2E/orders/x", "order-upstream", "/orders/x"),
        ("/orders/%41bc", "order-upstream", "/orders/Abc"),
        ("/orders/a%2fb", "order-upstream", "/orders/a%2Fb"),
        ("/orders/%c3%a9", "order-upstream", "/orders/%C3%A9"),
        ("/orders//x/./y", "order-upstream", "/orders/x/y"),
        ("/orders/x?a=%2e&b=c%20d", "order-upstream", "/orders/x?a=%2e&b=c%20d"),
    ],
)
async def test_the_gateway_routes_and_forwards_the_normalised_path(
    gateway: TestClient[Any, Any],
    upstream: TestServer,
    auth_header: Any,
    raw: str,
    host: str,
    upstream_path: str,
) -> None:
    """``/cache/%2e`` is ``/cache/`` to Kong: the cache route, forwarded as ``/cache/`` (the
    local gateway used to send ``/cache``). Dot segments can leave a route's prefix, and the
    router follows the result. The query goes as sent."""
    status = await raw_get(gateway, raw, auth_header())
    assert status == b"HTTP/1.1 200 OK"
    seen = recorded(upstream)[-1]
    assert seen["headers"]["Host"] == host
    assert seen["path"] == upstream_path
    assert seen["headers"]["X-Forwarded-Path"] == raw.partition("?")[0]


async def test_a_path_that_normalises_to_no_route_is_404(gateway: TestClient[Any, Any]) -> None:
    assert await raw_get(gateway, "/orders/%2e%2e/health", {}) == b"HTTP/1.1 404 Not Found"
