"""Fixtures for the local gateway's tests: a recording upstream and a gateway built from the
real template (deploy/kong/kong.yml) rendered with this test's keys, Redis and upstream."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from svc_core.testing import KeyPair
from svc_gateway.config import load
from svc_gateway.gateway import Gateway
from svc_gateway.render import render_file
from svc_gateway.server import ClientLimits

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "kong" / "kong.yml"
SERVICES = ("CUSTOMER", "ORDER", "PAYMENT", "CHAT", "CACHE", "FILES")

RECORDED: web.AppKey[list[dict[str, Any]]] = web.AppKey("recorded")


async def _echo(request: web.Request) -> web.StreamResponse:
    """Record what reached the upstream; answer with it as JSON."""
    body = await request.read()
    seen = {
        "method": request.method,
        "path": request.path_qs,
        "headers": dict(request.headers),
        "body_length": len(body),
        "port": request.transport.get_extra_info("sockname")[1] if request.transport else 0,
    }
    request.app[RECORDED].append(seen)
    return web.json_response(seen, headers={"X-Upstream": "echo"})


async def _ws(request: web.Request) -> web.StreamResponse:
    if request.query.get("refuse"):
        return web.json_response({"status": 401}, status=401)
    ws = web.WebSocketResponse(protocols=("chat.v1",))
    await ws.prepare(request)
    async for message in ws:
        if message.data == "close-4001":
            await ws.close(code=4001, message=b"token expired")
            break
        if message.type.name == "TEXT":
            await ws.send_str("echo:" + message.data)
        else:
            await ws.send_bytes(b"echo:" + message.data)
    return ws


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    for i in range(int(request.query.get("chunks", "3"))):
        await response.write(bytes([i % 256]) * 65536)
    await response.write_eof()
    return response


async def _health(request: web.Request) -> web.Response:
    if request.app[SICK][0]:
        return web.json_response({"status": "sick"}, status=503)
    return web.json_response({"status": "ok"})


RELEASE: web.AppKey[asyncio.Event] = web.AppKey("release")
FIRST_CHUNK: web.AppKey[asyncio.Event] = web.AppKey("first_chunk")
SICK: web.AppKey[list[bool]] = web.AppKey("sick")


async def _slow(request: web.Request) -> web.StreamResponse:
    """One chunk, then wait for the test to say it has seen it, then the rest."""
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"first-chunk;")
    await request.app[RELEASE].wait()
    await response.write(b"rest")
    await response.write_eof()
    return response


async def _upload(request: web.Request) -> web.Response:
    """Tell the test once the first request chunk has arrived, then read the rest."""
    first = await request.content.readany()
    request.app[FIRST_CHUNK].set()
    rest = await request.content.read()
    return web.json_response({"received": len(first) + len(rest)})


def upstream_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[RECORDED] = []
    app[RELEASE] = asyncio.Event()
    app[FIRST_CHUNK] = asyncio.Event()
    app[SICK] = [False]
    app.router.add_get("/health", _health)
    app.router.add_get("/cache/ws", _ws)
    app.router.add_get("/chat/ws", _ws)
    app.router.add_get("/orders/stream", _stream)
    app.router.add_get("/orders/slow", _slow)
    app.router.add_post("/orders/upload", _upload)
    app.router.add_post("/files", _upload)
    app.router.add_route("*", r"/{tail:[\s\S]*}", _echo)  # also a decoded %0A
    return app


@pytest.fixture
async def upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    return await aiohttp_server(upstream_app())


def recorded(server: TestServer) -> list[dict[str, Any]]:
    return server.app[RECORDED]


def gateway_env(
    redis_url: str, keys: KeyPair, targets: dict[str, str], **extra: str
) -> dict[str, str]:
    env = {"JWT_PUBLIC_KEYS": keys.public_pem, **{f"{s}_TARGETS": targets[s] for s in targets}}
    if not redis_url.startswith("memory://"):
        parts = urlsplit(redis_url)
        env |= {
            "RATE_LIMIT_REDIS_HOST": parts.hostname or "127.0.0.1",
            "RATE_LIMIT_REDIS_PORT": str(parts.port or 6379),
            "RATE_LIMIT_REDIS_DATABASE": parts.path.strip("/") or "0",
        }
    return env | extra


@pytest.fixture
def render(tmp_path: Path, redis_url: str, test_keys: KeyPair) -> Callable[..., Path]:
    """``render(targets={...}, **env)`` → the path of kong.yml rendered for this test."""

    def make(targets: dict[str, str], template: Path = TEMPLATE, **extra: str) -> Path:
        out = tmp_path / "kong.yml"
        render_file(template, out, gateway_env(redis_url, test_keys, targets, **extra))
        return out

    return make


GatewayFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def make_gateway(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    render: Callable[..., Path],
    redis_url: str,
    upstream: TestServer,
) -> GatewayFactory:
    """A test client of a local gateway; every service routed to ``upstream`` by default,
    nginx's client limits unless ``limits`` says otherwise."""

    async def make(
        targets: dict[str, str] | None = None, limits: ClientLimits | None = None, **extra: str
    ) -> TestClient[Any, Any]:
        address = f"127.0.0.1:{upstream.port}"
        path = render(targets or dict.fromkeys(SERVICES, address), **extra)
        override = redis_url if redis_url.startswith("memory://") else None
        gateway = Gateway(load(path), redis_override=override, limits=limits)
        return await aiohttp_client(gateway.app())

    return make


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> TestClient[Any, Any]:
    return await make_gateway()


def body_json(raw: bytes) -> Any:
    return json.loads(raw)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def gateway_of(client: TestClient[Any, Any]) -> Gateway:
    from svc_gateway.gateway import GATEWAY

    return client.server.app[GATEWAY]


def pin_clock(client: TestClient[Any, Any], now: float) -> None:
    """Fix the rate limiter's clock, so a test never straddles a window boundary."""
    from svc_gateway.plugins.rate_limiting import RateLimiting

    for plugin in gateway_of(client)._instances.values():
        if isinstance(plugin, RateLimiting):
            plugin.clock = lambda: now
