"""Routing (K:kong/router/transform.lua get_priority, traditional_compatible) and load
balancing with active health checks (K:kong/runloop/balancer/, lua-resty-healthcheck)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from svc_core.testing import free_port
from svc_gateway.balancer import Balancer
from svc_gateway.config import parse
from svc_gateway.router import Router
from tests.gateway.conftest import SICK, gateway_of, recorded, upstream_app

ServerFactory = Callable[..., Awaitable[TestServer]]


def routes(*specs: dict[str, Any]) -> Router:
    document = {
        "_format_version": "3.0",
        "services": [{"name": "s", "host": "example", "routes": list(specs)}],
    }
    return Router(parse(document).routes)


def test_method_routes_beat_longer_paths_only_routes() -> None:
    """get_priority: the count of match fields (methods, paths, ...) sits above the path
    length, so [GET /a] wins over [/a/b] for GET /a/b; among equals the longest prefix wins."""
    router = routes(
        {"name": "short", "paths": ["/a"]},
        {"name": "long", "paths": ["/a/b"]},
        {"name": "get", "paths": ["/a"], "methods": ["GET"]},
    )
    assert router.match("GET", "/a/b/c").name == "get"  # type: ignore[union-attr]
    assert router.match("POST", "/a/b/c").name == "long"  # type: ignore[union-attr]
    assert router.match("POST", "/a/x").name == "short"  # type: ignore[union-attr]
    assert router.match("POST", "/b") is None


def test_prefixes_are_plain_string_prefixes() -> None:
    """A path without ``~`` is a prefix (``http.path ^= "/a"``), not a segment match."""
    router = routes({"name": "a", "paths": ["/a"]})
    assert router.match("GET", "/abc") is not None


async def test_public_post_routes_win_over_the_protected_prefix(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """kong.yml: POST /auth/login is the public route (methods + paths); GET /auth/login only
    matches the protected /auth prefix, so the jwt plugin answers."""
    assert (await gateway.post("/auth/login", json={})).status == 200
    assert (await gateway.get("/auth/login")).status == 401
    assert (await gateway.post("/auth/logout")).status == 401
    assert (await gateway.get("/auth/jwks.json")).status == 200


async def test_no_route_is_404_from_the_router(gateway: TestClient[Any, Any]) -> None:
    """K:kong/runloop/handler.lua: no match -> kong.response.error(404, "no Route matched with
    those values")."""
    response = await gateway.get("/health")
    assert response.status == 404
    body = json.loads(await response.read())
    assert body["message"] == "no Route matched with those values"
    assert set(body) == {"message", "request_id"}


async def test_round_robin_over_every_target(
    make_gateway: Any, aiohttp_server: ServerFactory, upstream: TestServer, auth_header: Any
) -> None:
    """Adding an instance = adding a target: ORDER_TARGETS=a,b renders two targets, and
    requests alternate between them (round-robin, equal weights)."""
    second = await aiohttp_server(upstream_app())
    targets = f"127.0.0.1:{upstream.port},127.0.0.1:{second.port}"
    client = await make_gateway(ORDER_TARGETS=targets)
    headers = auth_header()
    for _ in range(4):
        assert (await client.get("/orders", headers=headers)).status == 200
    assert len(recorded(upstream)) == 2
    assert len(recorded(second)) == 2


async def test_unhealthy_target_leaves_the_rotation_and_comes_back(
    make_gateway: Any, aiohttp_server: ServerFactory, upstream: TestServer, auth_header: Any
) -> None:
    """Active checks on /health (kong.yml: unhealthy after 2 failing statuses, healthy again
    after 1 success). Probes are driven by hand here, so no test waits for an interval."""
    sick = await aiohttp_server(upstream_app())
    sick.app[SICK][0] = True
    client = await make_gateway(ORDER_TARGETS=f"127.0.0.1:{upstream.port},127.0.0.1:{sick.port}")
    balancer = gateway_of(client).balancers["order-upstream"]
    await balancer.stop_watching()
    for target_state in balancer.states:  # undo what the first automatic probes may have done
        target_state.healthy = True
        target_state.reset()
    check = balancer.upstream.active
    assert check is not None
    state = next(s for s in balancer.states if s.target.port == sick.port)
    await balancer.probe(state, check)
    assert state.healthy  # one failure is not enough (http_failures: 2)
    await balancer.probe(state, check)
    assert not state.healthy
    headers = auth_header()
    for _ in range(4):
        assert (await client.get("/orders", headers=headers)).status == 200
    assert len(recorded(sick)) == 0
    sick.app[SICK][0] = False
    await balancer.probe(state, check)
    assert state.healthy
    for _ in range(2):
        await client.get("/orders", headers=headers)
    assert len(recorded(sick)) == 1


async def test_refused_connection_is_retried_on_the_next_target(
    make_gateway: Any, upstream: TestServer, auth_header: Any
) -> None:
    """Service retries (default 5): a target that refuses the connection gets nothing sent,
    so Kong tries the next one."""
    dead = free_port()
    client = await make_gateway(ORDER_TARGETS=f"127.0.0.1:{dead},127.0.0.1:{upstream.port}")
    balancer = gateway_of(client).balancers["order-upstream"]
    await balancer.stop_watching()
    for state in balancer.states:
        state.healthy = True  # the dead target stays in rotation: only retries save requests
    for _ in range(3):
        assert (await client.get("/orders", headers=auth_header())).status == 200


async def test_tcp_failure_marks_a_target_unhealthy() -> None:
    """tcp_failures: 1 in kong.yml: one refused probe takes the target out."""
    document = {
        "_format_version": "3.0",
        "upstreams": [
            {
                "name": "u",
                "healthchecks": {
                    "active": {
                        "http_path": "/health",
                        "healthy": {"interval": 5, "successes": 1},
                        "unhealthy": {"interval": 2, "tcp_failures": 1},
                    }
                },
                "targets": [{"target": f"127.0.0.1:{free_port()}"}],
            }
        ],
    }
    balancer = Balancer(parse(document).upstreams["u"])
    await balancer.start()
    await balancer.stop_watching()
    try:
        assert balancer.upstream.active is not None
        await balancer.probe(balancer.states[0], balancer.upstream.active)
        assert balancer.pick() is None
    finally:
        await balancer.stop()


async def test_no_healthy_target_is_503(
    make_gateway: Any, upstream: TestServer, auth_header: Any
) -> None:
    """K:kong/runloop/balancer: no peer -> 503 "failure to get a peer from the ring-balancer"."""
    client = await make_gateway()
    balancer = gateway_of(client).balancers["order-upstream"]
    await balancer.stop_watching()
    for state in balancer.states:
        state.healthy = False
    response = await client.get("/orders", headers=auth_header())
    assert response.status == 503
    body = json.loads(await response.read())
    assert body["message"] == "failure to get a peer from the ring-balancer"


async def test_unreachable_upstream_is_502(make_gateway: Any, auth_header: Any) -> None:
    """Every try refused -> 502 "An invalid response was received from the upstream server"."""
    client = await make_gateway(ORDER_TARGETS=f"127.0.0.1:{free_port()}")
    balancer = gateway_of(client).balancers["order-upstream"]
    await balancer.stop_watching()
    balancer.states[0].healthy = True  # as before the first probe: only the proxy's tries fail
    response = await client.get("/orders", headers=auth_header())
    assert response.status == 502
    body = json.loads(await response.read())
    assert body["message"] == "An invalid response was received from the upstream server"
