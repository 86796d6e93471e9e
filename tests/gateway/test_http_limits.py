"""api.md "HTTP limits" at the gateway: nginx's header buffers and client timeouts, which Kong
runs with (it sets none of them; K:kong/templates/nginx_kong.lua), over raw sockets.

- ``large_client_header_buffers 4 8k``: a header line over 8 KiB, or a head over 32 KiB, is
  400 ``Request header or cookie too large`` (nginx's 494 through K:kong/error_handlers.lua);
  a request target over 8 KiB is 414.
- ``client_header_timeout`` / ``client_body_timeout`` (60 s) and ``keepalive_timeout`` (75 s):
  shortened here through :class:`ClientLimits` so the behaviour shows in about a second. Every
  wait below is a bound against hanging, never a performance assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from svc_core.testing import free_port
from svc_gateway.server import ClientLimits
from tests.gateway.conftest import SERVICES, recorded

KIB = 1024
SHORT = ClientLimits(client_header_timeout=1.0, client_body_timeout=1.0, keepalive_timeout=1.0)
BOUND = 10.0  # generous upper bound for "the gateway closed the connection"

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(client: TestClient[Any, Any]) -> Conn:
    return await asyncio.open_connection("127.0.0.1", client.port)


def head(target: str = "/auth/jwks.json", *lines: str, method: str = "GET") -> bytes:
    text = f"{method} {target} HTTP/1.1\r\nHost: gw\r\n" + "".join(f"{line}\r\n" for line in lines)
    return (text + "\r\n").encode("latin-1")


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), BOUND)
    return int(status_line.split()[1]), headers, body


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True when the gateway closes the connection (EOF or reset) before BOUND."""
    try:
        rest = await asyncio.wait_for(reader.read(), BOUND)
    except ConnectionError:
        return True
    return rest == b""


def close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


def line_of(total: int, name: str = "X-Big") -> str:
    """A header line of exactly ``total`` bytes, CRLF included."""
    return f"{name}: " + "a" * (total - len(name) - 4)


# --- sizes ----------------------------------------------------------------------------------


async def test_a_header_line_of_8_kib_passes_one_byte_more_is_400(
    gateway: TestClient[Any, Any], upstream: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await connect(gateway)
    writer.write(head("/auth/jwks.json", line_of(8 * KIB), "Connection: close"))
    status, _, _ = await response(reader)
    close(writer)
    assert status == 200
    reader, writer = await connect(gateway)
    writer.write(head("/auth/jwks.json", line_of(8 * KIB + 1, "X-Secret"), "Connection: close"))
    status, headers, body = await response(reader)
    close(writer)
    assert status == 400
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body)["message"] == "Request header or cookie too large"
    assert uuid.UUID(headers["x-request-id"])
    assert b"aaaa" not in body  # nothing of the request is echoed
    assert "aaaa" not in caplog.text
    assert len(recorded(upstream)) == 1


async def test_headers_over_32_kib_in_all_are_400(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    lines = [line_of(7 * KIB, f"X-Part-{i}") for i in range(4)]  # 28 KiB + the rest: passes
    reader, writer = await connect(gateway)
    writer.write(head("/auth/jwks.json", *lines, "Connection: close"))
    status, _, _ = await response(reader)
    close(writer)
    assert status == 200
    lines.append(line_of(5 * KIB, "X-Part-4"))  # 33 KiB
    reader, writer = await connect(gateway)
    writer.write(head("/auth/jwks.json", *lines))
    status, headers, body = await response(reader)
    assert status == 400
    assert json.loads(body)["message"] == "Request header or cookie too large"
    assert headers["connection"] == "close"
    assert await closed_by_peer(reader)
    close(writer)
    assert len(recorded(upstream)) == 1


async def test_sizes_are_counted_across_reads(gateway: TestClient[Any, Any]) -> None:
    """A head that arrives in small pieces is measured as a whole: 28 KiB in 500-byte writes
    passes; a 9 KiB line in the same pieces is refused."""
    for lines, expected in (
        ([line_of(7 * KIB, f"X-Part-{i}") for i in range(4)], 200),
        ([line_of(9 * KIB)], 400),
    ):
        data = head("/auth/jwks.json", *lines, "Connection: close")
        reader, writer = await connect(gateway)
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(data), 500):
                writer.write(data[start : start + 500])
                await writer.drain()
        status, _, _ = await response(reader)
        close(writer)
        assert status == expected


async def test_body_bytes_never_count_as_head(
    gateway: TestClient[Any, Any], upstream: TestServer, make_token: Any
) -> None:
    """A 28 KiB head and a 512 KiB body in one write, twice on one connection (pipelined):
    only the heads are measured, and both requests are served."""
    body = b"z" * (512 * KIB)
    one = (
        head(
            "/orders/upload",
            f"Authorization: Bearer {make_token()}",
            *[line_of(6 * KIB, f"X-Part-{i}") for i in range(4)],
            f"Content-Length: {len(body)}",
            method="POST",
        )
        + body
    )
    reader, writer = await connect(gateway)
    writer.write(one + one)
    for _ in range(2):
        status, _, answer = await response(reader)
        assert status == 200
        assert json.loads(answer) == {"received": len(body)}
    close(writer)


async def test_a_request_target_over_8_kib_is_414(gateway: TestClient[Any, Any]) -> None:
    reader, writer = await connect(gateway)
    writer.write(head("/orders/" + "a" * (8 * KIB)))
    status, _, body = await response(reader)
    close(writer)
    assert status == 414
    assert json.loads(body)["message"] == "URI too long"


async def test_a_framing_error_is_answered_without_echo_or_logged_token(
    gateway: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11, finding 6 at the gateway: a control byte in a header is Kong's 400 JSON
    ``Bad request``; the token next to it is neither echoed nor logged."""
    caplog.set_level(logging.DEBUG)
    reader, writer = await connect(gateway)
    writer.write(head("/orders", "Authorization: Bearer SECRET-TOKEN\x01x"))
    status, headers, body = await response(reader)
    close(writer)
    assert status == 400
    assert json.loads(body)["message"] == "Bad request"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert b"SECRET" not in body
    assert "SECRET" not in caplog.text


EchoFactory = Callable[..., Awaitable[TestServer]]


async def test_a_long_request_id_never_leaves_a_side_effect_behind(
    aiohttp_server: EchoFactory, make_gateway: Any, auth_header: Any
) -> None:
    """Issue 11, finding 5: an upstream that creates an order and echoes X-Request-ID used to
    get an 8,200-character id, create the order, and answer a head the gateway could not
    read (502, so the client retried). Now an id over 8 KiB is refused before any upstream,
    and a long one under it is replaced: the upstream never sees it, the client gets 201."""
    created: list[str] = []

    async def create(request: web.Request) -> web.Response:
        created.append(request.headers.get("X-Request-ID", ""))
        return web.json_response(
            {"id": len(created)},
            status=201,
            headers={"X-Request-ID": request.headers.get("X-Request-ID", "")},
        )

    app = web.Application()
    app.router.add_post("/orders", create)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/health", health)
    server = await aiohttp_server(app)
    client = await make_gateway(dict.fromkeys(SERVICES, f"127.0.0.1:{server.port}"))
    headers = auth_header() | {"Content-Type": "application/json"}

    refused = await client.post("/orders", json={}, headers=headers | {"X-Request-ID": "r" * 8200})
    assert refused.status == 400
    assert json.loads(await refused.read())["message"] == "Request header or cookie too large"
    assert created == []

    long_id = "r" * 5000
    done = await client.post("/orders", json={}, headers=headers | {"X-Request-ID": long_id})
    assert done.status == 201
    echoed = done.headers["X-Request-ID"]
    assert str(uuid.UUID(echoed)) == echoed
    assert created == [echoed]


# --- timeouts -------------------------------------------------------------------------------


@pytest.fixture
async def short(make_gateway: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_gateway(limits=SHORT)
    return client


async def test_a_head_sent_byte_by_byte_is_cut_off(short: TestClient[Any, Any]) -> None:
    """client_header_timeout bounds the whole head, however steadily its bytes trickle in
    (one every 0.2 s here, well under the 1 s limit): the connection closes, unanswered."""
    reader, writer = await connect(short)
    writer.write(b"GET /auth/jwks.json HTTP/1.1\r\nHost: gw\r\n")

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(200):
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.2)

    dripping = asyncio.create_task(trickle())
    try:
        assert await closed_by_peer(reader)
    finally:
        dripping.cancel()
        close(writer)


async def test_a_connection_that_never_sends_a_head_is_closed(
    short: TestClient[Any, Any],
) -> None:
    reader, writer = await connect(short)
    assert await closed_by_peer(reader)
    close(writer)


async def test_a_stalled_body_is_cut_off(
    short: TestClient[Any, Any], make_token: Any, upstream: TestServer
) -> None:
    """client_body_timeout: the head is complete, 10 of 100 body bytes came, then nothing."""
    reader, writer = await connect(short)
    writer.write(
        head(
            "/orders/upload",
            f"Authorization: Bearer {make_token()}",
            "Content-Length: 100",
            method="POST",
        )
        + b"x" * 10
    )
    assert await closed_by_peer(reader)
    close(writer)


async def test_a_slow_but_steady_body_is_served(
    short: TestClient[Any, Any], make_token: Any
) -> None:
    """The body timer runs between two reads, not over the whole body: 5 parts 0.4 s apart
    (2 s in all, twice the limit) go through."""
    reader, writer = await connect(short)
    writer.write(
        head(
            "/orders/upload",
            f"Authorization: Bearer {make_token()}",
            "Content-Length: 50",
            "Connection: close",
            method="POST",
        )
    )
    for _ in range(5):
        await asyncio.sleep(0.4)
        writer.write(b"y" * 10)
        await writer.drain()
    status, _, body = await response(reader)
    close(writer)
    assert status == 200
    assert json.loads(body) == {"received": 50}


async def test_an_idle_keep_alive_connection_is_closed(short: TestClient[Any, Any]) -> None:
    """keepalive_timeout after a response; a request sent within it is still served."""
    reader, writer = await connect(short)
    writer.write(head())
    assert (await response(reader))[0] == 200
    await asyncio.sleep(0.3)
    writer.write(head())
    assert (await response(reader))[0] == 200
    assert await closed_by_peer(reader)
    close(writer)


async def test_nginx_defaults() -> None:
    limits = ClientLimits()
    assert (limits.client_header_timeout, limits.client_body_timeout) == (60, 60)
    assert limits.keepalive_timeout == 75
    assert (limits.header_buffers, limits.header_buffer_size) == (4, 8 * KIB)


async def test_svc_gateway_run_takes_the_limits(
    render: Callable[..., Any], redis_url: str, tmp_path: Any
) -> None:
    """``svc-gateway run --client-header-timeout 1``: the setting reaches the server."""
    port = free_port()
    config = render(dict.fromkeys(SERVICES, f"127.0.0.1:{free_port()}"))
    extra = ["--redis-url", redis_url] if redis_url.startswith("memory://") else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "svc_gateway", "run", "--config", str(config), "--port", str(port),
        "--client-header-timeout", "1", *extra,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("svc-gateway run did not listen")
        assert await closed_by_peer(reader)
        close(writer)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), BOUND)
