"""The chassis' own endpoints on every service: ``/health``, ``/ready``, ``/metrics``,
``/openapi.json`` (public, never routed by the gateway)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from svc_core import keys
from svc_core.keys import CHECKS, OPENAPI, ReadinessCheck
from svc_core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from svc_core.routing import public


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    checks = request.app[CHECKS]

    async def run(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), timeout=2.0)
        except TimeoutError:
            return "timeout"
        except Exception as exc:
            return f"unavailable ({type(exc).__name__})"
        return "ok"

    names = list(checks)
    results = await asyncio.gather(*(run(checks[name]) for name in names))
    report = dict(zip(names, results, strict=True))
    ready = all(result == "ok" for result in results)
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": report},
        status=200 if ready else 503,
    )


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[keys.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def add_endpoints(app: web.Application) -> None:
    for path, handler in (
        ("/health", _health),
        ("/ready", _ready),
        ("/metrics", _metrics),
        ("/openapi.json", _openapi),
    ):
        app.router.add_get(path, public(handler))


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    """Add a dependency to ``/ready`` (call from a cleanup context)."""
    app[CHECKS][name] = check
