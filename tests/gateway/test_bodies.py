"""Request bodies cross the gateway as they are (issue 11, finding 1).

Kong proxies a request body byte for byte: nginx never decodes ``Content-Encoding``, and
request-size-limiting measures the raw body (``Content-Length``, or the length of
``kong.request.get_raw_body()`` / the buffered body file; K:kong/plugins/request-size-limiting/
handler.lua never looks at ``Content-Encoding``). Whether a compressed body is decoded or refused
is the service's business. These tests run their own upstream, which does NOT decode either, so
they see exactly the bytes and headers the gateway sent.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.gateway.conftest import SERVICES

MIB = 1024 * 1024
RAW: web.AppKey[list[dict[str, Any]]] = web.AppKey("raw")


async def _record_raw(request: web.Request) -> web.Response:
    body = await request.read()
    if request.path == "/health":  # the gateway's active health checks
        return web.json_response({"status": "ok"})
    request.app[RAW].append(
        {
            "sha256": hashlib.sha256(body).hexdigest(),
            "length": len(body),
            "headers": dict(request.headers),
        }
    )
    return web.json_response({"received": len(body)}, status=201)


@pytest.fixture
async def raw_gateway(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_gateway: Any
) -> tuple[TestClient[Any, Any], list[dict[str, Any]]]:
    app = web.Application(client_max_size=64 * MIB, handler_args={"auto_decompress": False})
    app[RAW] = []
    app.router.add_route("*", "/{tail:.*}", _record_raw)
    server = await aiohttp_server(app)
    client = await make_gateway(dict.fromkeys(SERVICES, f"127.0.0.1:{server.port}"))
    return client, app[RAW]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(json.dumps({"currency": "EUR", "items": []}).encode())),
        ("deflate", zlib.compress(b'{"currency": "EUR"}')),
        ("gzip", b"this is not gzip at all"),
        ("br", b"\x8b\x02\x80hello\x03"),
    ],
    ids=["gzip", "deflate", "garbage-as-gzip", "br"],
)
async def test_encoded_bodies_reach_the_upstream_byte_for_byte(
    raw_gateway: tuple[TestClient[Any, Any], list[dict[str, Any]]],
    auth_header: Any,
    encoding: str,
    body: bytes,
) -> None:
    """No decoding at the gateway: the exact bytes, their Content-Length and the
    Content-Encoding header arrive upstream, and the upstream's answer comes back (before the
    fix: a valid gzip body arrived decoded under a stale Content-Encoding, garbage gave 502)."""
    client, seen = raw_gateway
    headers = auth_header() | {"Content-Type": "application/json", "Content-Encoding": encoding}
    response = await client.post("/orders", data=body, headers=headers)
    assert response.status == 201, await response.text()
    assert await response.json() == {"received": len(body)}
    assert seen[-1]["sha256"] == sha(body)
    assert seen[-1]["headers"]["Content-Encoding"] == encoding
    assert seen[-1]["headers"]["Content-Length"] == str(len(body))


async def test_a_compressed_body_is_measured_as_sent(
    raw_gateway: tuple[TestClient[Any, Any], list[dict[str, Any]]], auth_header: Any
) -> None:
    """request-size-limiting counts the bytes on the wire: 8 MiB of zeros gzip to a few KiB
    and pass the 1 MiB limit (refusing or decoding them is the service's job); a compressed
    body whose raw size is over the limit is 413, declared or chunked."""
    client, seen = raw_gateway
    headers = auth_header() | {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    bomb = gzip.compress(b"\0" * (8 * MIB))
    assert len(bomb) < MIB
    passed = await client.post("/orders", data=bomb, headers=headers)
    assert passed.status == 201
    assert seen[-1]["sha256"] == sha(bomb)

    big = gzip.compress(bytes(range(256)) * (5 * MIB // 256), compresslevel=0)
    assert len(big) > MIB
    declared = await client.post("/orders", data=io.BytesIO(big), headers=headers)
    assert declared.status == 413

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await client.post("/orders", data=chunked(), headers=headers)
    assert streamed.status == 413
    assert json.loads(await streamed.read())["message"] == "Request size limit exceeded"
    assert [s["length"] for s in seen] == [len(bomb)]
