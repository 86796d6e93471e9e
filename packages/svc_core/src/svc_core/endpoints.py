"""The chassis' own endpoints on every service: ``/health``, ``/ready``, ``/metrics``,
``/openapi.json`` (public, never routed by the gateway)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from svc_core import keys
from svc_core.keys import CHECKS, OPENAPI, ReadinessCheck
from svc_core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from svc_core.metrics import Family
from svc_core.routing import public

#: the endpoints probes and scrapers call every few seconds: left out of the access log unless
#: ACCESS_LOG_PROBES is set
PROBES = frozenset({"/health", "/ready", "/metrics"})


_HEALTH_BODY = b'{"status":"ok"}'
_JSON = {"Content-Type": "application/json; charset=utf-8"}


async def _health(request: web.Request) -> web.Response:
    return web.Response(body=_HEALTH_BODY, headers=_JSON)


async def readiness(app: web.Application) -> dict[str, str]:
    """Every readiness check of ``app`` run at once: name -> ``ok`` or why not."""
    checks = app[CHECKS]

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
    return dict(zip(names, results, strict=True))


async def _ready(request: web.Request) -> web.Response:
    report = await readiness(request.app)
    ready = all(result == "ok" for result in report.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": report},
        status=200 if ready else 503,
    )


async def sample_readiness(app: web.Application) -> list[Family]:
    """``/ready`` as metrics, on each scrape: ``svc_ready`` and one ``svc_ready_check`` per
    dependency (1 ok, 0 not), so an alert sees a service that is up but not ready."""
    metrics = app[keys.METRICS]
    report = await readiness(app)
    ready = metrics.gauge("svc_ready", "1 when every readiness check passes (/ready is 200).")
    ready.add(1.0 if all(r == "ok" for r in report.values()) else 0.0)
    checks = metrics.gauge("svc_ready_check", "1 when this readiness check passes.", ["check"])
    for name, result in report.items():
        checks.add(1.0 if result == "ok" else 0.0, name)
    return [ready, checks]


async def _metrics(request: web.Request) -> web.Response:
    body = await request.app[keys.METRICS].scrape()
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
    app[keys.METRICS].add_sampler("ready", lambda: sample_readiness(app))


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    """Add a dependency to ``/ready`` (call from a cleanup context)."""
    app[CHECKS][name] = check
