"""The request pipeline's cost with tracing off and on, in-process (no sockets): one route's
chassis-wrapped handler called N times on a mocked request. Run: python bench/tracing_micro.py

Off is the default: the handler is not wrapped at all then, so it must measure as the baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from svc_core import Settings, tracing
from svc_core.logs import service_var
from svc_core.metrics import Metrics
from svc_core.pipeline import Chassis
from svc_core.routing import public

N = 20_000
ROUNDS = 5


@public
async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


async def per_request_us(traced: bool, headers: dict[str, str]) -> float:
    chassis = Chassis("bench", Metrics("bench"), None, auth=False, traced=traced)
    handler = chassis.wrap(hello, "/hello")
    request = make_mocked_request("GET", "/hello", headers=headers)
    exporter = tracing.memory_exporter()
    for _ in range(1000):  # warm up
        await handler(request)
    started = time.perf_counter()
    for _ in range(N):
        await handler(request)
    elapsed = time.perf_counter() - started
    exporter.clear()
    return elapsed / N * 1e6


async def main() -> None:
    ratio = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    settings = Settings.from_env({}, otel_traces="memory", otel_traces_sampler_arg=ratio)
    tracing.configure(settings, "bench")
    service_var.set("bench")
    parent = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    configs = {
        "off": (False, {}),
        f"on, new trace (ratio {ratio})": (True, {}),
        "on, continuing a sampled traceparent": (True, parent),
    }
    results: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(ROUNDS):  # interleaved, to share the noise
        for name, (traced, headers) in configs.items():
            results[name].append(await per_request_us(traced, headers))
    for name, runs in results.items():
        runs_us = [round(r, 2) for r in runs]
        print(f"{name:40s} median {statistics.median(runs):7.2f} us/request  runs {runs_us}")


if __name__ == "__main__":
    asyncio.run(main())
