"""What /metrics samples on each scrape: readiness, event lag per consumer group, dead letters,
and a sampler of the service's own (svc_core.metrics.Metrics.add_sampler). Real Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from svc_core import Consume, Events, EventsSettings, RouteTable, Service, keys
from svc_core.embedded import RedisServer
from svc_core.events import Consumer, Event, PermanentEventError
from svc_core.redis import open_redis
from svc_core.testing import eventually, metric_value, metrics_of
from tests.svc_core.toy import ToySettings, create_toy_app

value = metric_value


async def scrape(client: Any) -> dict[Any, float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return metrics_of(await resp.text())


async def test_ready_gauges_follow_a_dependency_down_and_back(aiohttp_client, make_settings):
    server = RedisServer().start()
    try:
        client = await aiohttp_client(
            create_toy_app(make_settings(ToySettings, redis_url=f"{server.url}/0"))
        )
        got = await scrape(client)
        assert value(got, "svc_ready", service="toy") == 1.0
        assert value(got, "svc_ready_check", service="toy", check="redis") == 1.0
        server.stop()
        got = await scrape(client)  # still answers: the scrape does not need Redis
        assert value(got, "svc_ready", service="toy") == 0.0
        assert value(got, "svc_ready_check", service="toy", check="redis") == 0.0
        assert value(got, "svc_ready_check", service="toy", check="mongodb") == 1.0
    finally:
        server.stop()


async def test_a_failing_sampler_is_left_out_and_the_rest_is_scraped(aiohttp_client, make_settings):
    app = create_toy_app(make_settings(ToySettings))
    metrics = app[keys.METRICS]

    def broken() -> list[Any]:
        raise RuntimeError("boom")

    async def fine() -> list[Any]:
        return [metrics.gauge("toy_things", "Things.", ["kind"]).add(3, "a")]

    metrics.add_sampler("broken", broken)
    metrics.add_sampler("fine", fine)
    client = await aiohttp_client(app)
    await client.get("/public/hello")
    got = await scrape(client)
    assert value(got, "toy_things", service="toy", kind="a") == 3.0
    assert value(got, "svc_ready", service="toy") == 1.0
    hello = {"service": "toy", "method": "GET", "route": "/public/hello", "status": "200"}
    assert value(got, "http_requests_total", **hello) == 1.0


OLD_MS = 1_700_000_000_000  # entry ids carry their publication time: events from Nov 2023


async def test_backlog_of_a_stream_not_there_yet_is_empty_not_an_error(redis_url):
    """Before the consumer's first read (or after Redis lost its data, until the consumer
    creates its group again) the stream does not exist: the scrape reports nothing behind."""
    redis = open_redis(redis_url)
    try:

        async def handle(event: Event) -> None:
            pass

        consumer = Consumer(redis, "events:not-yet", "g", handle, consumer="c1")
        backlog = await consumer.backlog()
        assert (backlog.pending, backlog.lag, backlog.oldest_age) == (0, 0, 0.0)
        assert backlog.dead_letters == 0
    finally:
        await redis.aclose()


async def test_backlog_counts_undelivered_and_pending_entries_and_the_oldest_age(redis_url):
    redis = open_redis(redis_url)
    try:

        async def handle(event: Event) -> None:
            pass

        consumer = Consumer(redis, "events:lagging", "g", handle, consumer="c1")
        await consumer.ensure_group()
        empty = await consumer.backlog()
        assert (empty.pending, empty.lag, empty.oldest_age, empty.dead_letters) == (0, 0, 0.0, 0)
        for n in range(3):
            fields = {"type": "t", "event_id": f"e{n}", "data": "{}"}
            await redis.xadd("events:lagging", fields, id=f"{OLD_MS + n * 1000}-0")
        backlog = await consumer.backlog()
        assert (backlog.pending, backlog.lag) == (0, 3)
        expected_age = time.time() - OLD_MS / 1000
        assert expected_age - 60 < backlog.oldest_age <= expected_age + 1
        # one read and not acknowledged: pending, and still the oldest
        await redis.xreadgroup("g", "c1", {"events:lagging": ">"}, count=1)
        backlog = await consumer.backlog()
        assert (backlog.pending, backlog.lag) == (1, 2)
        assert expected_age - 60 < backlog.oldest_age <= expected_age + 1
        # the first acknowledged: the oldest is now the second entry, a second younger
        await redis.xack("events:lagging", "g", f"{OLD_MS}-0")
        after_ack = await consumer.backlog()
        assert (after_ack.pending, after_ack.lag) == (0, 2)
        assert after_ack.oldest_age < backlog.oldest_age
        assert after_ack.oldest_age <= time.time() - (OLD_MS + 1000) / 1000 + 1
        # everything read and acknowledged: nothing behind
        await redis.xreadgroup("g", "c1", {"events:lagging": ">"}, count=10)
        await redis.xack("events:lagging", "g", f"{OLD_MS + 1000}-0", f"{OLD_MS + 2000}-0")
        done = await consumer.backlog()
        assert (done.pending, done.lag, done.oldest_age) == (0, 0, 0.0)
    finally:
        await redis.aclose()


async def test_event_metrics_move_with_pending_and_dead_lettered_events(
    aiohttp_client, make_settings, redis_url
):
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(app: Any, event: Event) -> None:
        if event.data.get("poison"):
            raise PermanentEventError("never")
        await release.wait()  # keeps the event pending until the test lets it go
        handled.append(event.event_id)

    service = Service(
        name="lagged",
        port=3997,
        settings=EventsSettings,
        routes=RouteTable(),
        uses=[Events(consume=[Consume("events:metered", "workers", handler)])],
    )
    client = await aiohttp_client(service.create_app(make_settings(EventsSettings)))
    where = {"service": "lagged", "stream": "events:metered", "group": "workers"}
    redis = open_redis(redis_url)
    try:
        got = await scrape(client)
        assert value(got, "svc_events_pending", **where) == 0.0
        assert value(got, "svc_events_dead_lettered_total", **where) == 0.0

        bus = client.app[keys.EVENTS]
        await bus.publish("events:metered", "x.poison", {"poison": True})
        await bus.publish("events:metered", "x.slow", {"n": 1})

        async def parked_and_pending() -> bool:
            got = await scrape(client)
            return (
                value(got, "svc_events_dead_lettered_total", **where) == 1.0
                and value(got, "svc_events_pending", **where) == 1.0
            )

        await eventually(parked_and_pending)
        got = await scrape(client)
        dead = {"service": "lagged", "stream": "events:metered"}
        assert value(got, "svc_events_dead_letter_entries", **dead) == 1.0
        assert value(got, "svc_events_lag", **where) == 0.0
        assert value(got, "svc_events_oldest_age_seconds", **where) > 0.0

        release.set()
        await eventually(lambda: len(handled) == 1)

        async def caught_up() -> bool:
            got = await scrape(client)
            return value(got, "svc_events_pending", **where) == 0.0

        await eventually(caught_up)
        got = await scrape(client)
        assert value(got, "svc_events_oldest_age_seconds", **where) == 0.0
        assert value(got, "svc_events_dead_lettered_total", **where) == 1.0  # a counter
    finally:
        release.set()
        await redis.aclose()
