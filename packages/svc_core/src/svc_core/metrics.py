"""Prometheus metrics per app: request count and latency by method, route and status.

Counting runs on every request, so it is plain Python arithmetic (no locks, no label lookups)
and is turned into Prometheus samples only when ``/metrics`` is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Series:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf


class Metrics(Collector):
    """A registry of its own per app, so several apps can share one process (tests, dev stack)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._series: dict[tuple[str, str, int], _Series] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.count += 1
        series.total += seconds
        series.buckets[bisect_left(BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "http_requests",
            "HTTP requests served.",
            labels=["service", "method", "route", "status"],
        )
        latency = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time to produce the response headers.",
            labels=["service", "method", "route"],
        )
        merged: dict[tuple[str, str], _Series] = {}
        for (method, route, status), series in list(self._series.items()):
            requests.add_metric([self.service, method, route, str(status)], series.count)
            into = merged.setdefault((method, route), _Series())
            into.count += series.count
            into.total += series.total
            into.buckets = [a + b for a, b in zip(into.buckets, series.buckets, strict=True)]
        for (method, route), series in merged.items():
            cumulative, running = [], 0
            for bound, hits in zip((*map(str, BUCKETS), "+Inf"), series.buckets, strict=True):
                running += hits
                cumulative.append((bound, float(running)))
            latency.add_metric([self.service, method, route], cumulative, series.total)
        yield requests
        yield latency

    def render(self) -> bytes:
        return generate_latest(self.registry)
