"""Tracing (svc_core.tracing): spans per request, service call, event, MongoDB and Redis call,
parents carried by W3C traceparent over HTTP and Redis Streams, trace ids in log lines."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from svc_core import SettingsError, tracing
from svc_core.client import ServiceClient
from svc_core.events import Consumer, Event, EventBus
from svc_core.logs import JSONFormatter, service_var
from svc_core.pipeline import WRAPPED_ATTR
from svc_core.redis import open_redis
from svc_core.testing import eventually
from tests.svc_core.toy import ToySettings, create_toy_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def spans():
    exporter = tracing.memory_exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


def by_name(exporter: Any) -> dict[str, Any]:
    return {s.name: s for s in exporter.get_finished_spans()}


def hex_trace(span: Any) -> str:
    return format(span.context.trace_id, "032x")


@pytest.fixture
async def traced(aiohttp_client, make_settings, spans):
    return await aiohttp_client(create_toy_app(make_settings(ToySettings, otel_traces="memory")))


async def test_a_request_continues_the_callers_trace_with_db_spans_under_it(traced, spans, alice):
    resp = await traced.post(
        "/notes", json={"title": "traced"}, headers={**alice, "traceparent": TRACEPARENT}
    )
    assert resp.status == 201
    got = by_name(spans)
    server = got["POST /notes"]
    assert server.kind == SpanKind.SERVER
    assert hex_trace(server) == TRACE_ID
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert server.attributes["http.route"] == "/notes"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes[tracing.SERVICE_ATTR] == "toy"
    assert server.attributes["svc.request_id"] == resp.headers["X-Request-ID"]
    insert = got["insert_one notes"]
    assert insert.parent.span_id == server.context.span_id
    assert insert.attributes["db.system.name"] == "mongodb"
    redis_spans = [
        s for s in spans.get_finished_spans() if s.attributes.get("db.system") == "redis"
    ]
    assert redis_spans, "the revocation check's Redis call is a span"
    assert all(s.parent.span_id == server.context.span_id for s in redis_spans)


async def test_a_request_without_traceparent_starts_a_trace_and_errors_are_marked(
    traced, spans, alice
):
    assert (await traced.get("/public/hello")).status == 200
    assert (await traced.get("/boom", headers=alice)).status == 500
    got = by_name(spans)
    assert got["GET /public/hello"].parent is None
    assert got["GET /boom"].status.is_ok is False
    assert got["GET /boom"].attributes["http.response.status_code"] == 500


async def test_tracing_off_wraps_nothing_and_records_nothing(aiohttp_client, make_settings, spans):
    client = await aiohttp_client(create_toy_app(make_settings(ToySettings)))
    assert (await client.get("/public/hello", headers={"traceparent": TRACEPARENT})).status == 200
    assert spans.get_finished_spans() == ()
    handlers = [r.handler for r in client.app.router.routes()]
    assert all(getattr(h, WRAPPED_ATTR, False) for h in handlers)
    assert not any(h.__code__.co_name == "traced" for h in handlers)


async def test_a_service_call_is_a_client_span_whose_traceparent_the_callee_continues(
    traced, spans
):
    token = service_var.set("toy")  # the calling code runs as a traced service
    try:
        async with __import__("aiohttp").ClientSession() as session:
            client = ServiceClient(session, str(traced.make_url("")))
            with tracing.tracer().start_as_current_span("caller", kind=SpanKind.SERVER) as root:
                resp = await client.request("GET", "/public/hello")
    finally:
        service_var.reset(token)
    assert resp.status == 200
    got = by_name(spans)
    call, server = got["GET"], got["GET /public/hello"]
    assert call.kind == SpanKind.CLIENT
    assert call.parent.span_id == root.get_span_context().span_id
    assert server.parent.span_id == call.context.span_id
    assert hex_trace(server) == hex_trace(call)


async def test_an_event_carries_its_trace_to_the_consumers_span(traced, spans, redis_url):
    redis = open_redis(redis_url)
    seen: list[tuple[Event, str | None]] = []

    async def handle(event: Event) -> None:
        ids = tracing.current_ids()
        seen.append((event, ids[0] if ids else None))

    token = service_var.set("toy")
    try:
        consumer = Consumer(redis, "events:traced", "g", handle, consumer="c", block=0.05)
        bus = EventBus(redis)
        with tracing.tracer().start_as_current_span("request", kind=SpanKind.SERVER) as root:
            await bus.publish("events:traced", "thing.done", {"n": 1})
        consumer.start()
        await eventually(lambda: bool(seen))
        await consumer.stop()
        stored = await redis.xrange("events:traced")
        saved = {"traceparent": stored[0][1]["traceparent"]}
        # an outbox publishes later, outside the request: the saved context is the parent
        await bus.publish("events:traced", "thing.later", {"n": 2}, trace=saved)
    finally:
        service_var.reset(token)
        await redis.aclose()
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert seen[0][1] == trace_id
    assert stored[0][1]["traceparent"].split("-")[1] == trace_id
    publishes = [s for s in spans.get_finished_spans() if s.name == "publish events:traced"]
    process = by_name(spans)["process events:traced"]
    assert publishes[0].parent.span_id == root.get_span_context().span_id
    assert process.kind == SpanKind.CONSUMER
    assert process.parent.span_id == publishes[0].context.span_id
    assert process.attributes["messaging.consumer.group.name"] == "g"
    assert hex_trace(publishes[1]) == trace_id  # the later publish joined the same trace


async def test_events_of_untraced_code_carry_no_trace(redis_url, spans):
    redis = open_redis(redis_url)
    try:
        await EventBus(redis).publish("events:plain", "x", {})
        (entry,) = await redis.xrange("events:plain")
    finally:
        await redis.aclose()
    assert "traceparent" not in entry[1]
    assert spans.get_finished_spans() == ()


async def test_log_lines_carry_the_trace_id_beside_the_request_id(traced, spans):
    formatter = JSONFormatter("toy")
    with tracing.tracer().start_as_current_span("work", kind=SpanKind.SERVER) as span:
        line = json.loads(formatter.format(logging.makeLogRecord({"msg": "inside"})))
    outside = json.loads(formatter.format(logging.makeLogRecord({"msg": "outside"})))
    ctx = span.get_span_context()
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert "trace_id" not in outside


def access_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if '"svc_core.access"' in line]


async def test_access_log_lines_carry_the_request_spans_ids(traced, spans, capsys):
    resp = await traced.get(
        "/public/hello", headers={"traceparent": TRACEPARENT, "X-Request-ID": "traced-1"}
    )
    assert resp.status == 200
    await traced.close()  # flushes the access log
    [line] = [x for x in access_lines(capsys.readouterr().err) if x["request_id"] == "traced-1"]
    server = by_name(spans)["GET /public/hello"]
    assert line["trace_id"] == TRACE_ID
    assert line["span_id"] == format(server.context.span_id, "016x")
    assert (line["route"], line["status"]) == ("/public/hello", 200)


async def test_access_log_lines_have_no_trace_ids_when_tracing_is_off(
    aiohttp_client, make_settings, spans, capsys
):
    client = await aiohttp_client(create_toy_app(make_settings(ToySettings)))
    headers = {"traceparent": TRACEPARENT, "X-Request-ID": "plain-1"}
    assert (await client.get("/public/hello", headers=headers)).status == 200
    await client.close()
    [line] = [x for x in access_lines(capsys.readouterr().err) if x["request_id"] == "plain-1"]
    assert "trace_id" not in line
    assert "span_id" not in line


async def test_root_database_calls_are_not_recorded(traced, spans, redis_url):
    token = service_var.set("toy")
    redis = open_redis(redis_url)
    try:
        await redis.ping()
    finally:
        await redis.aclose()
        service_var.reset(token)
    await asyncio.sleep(0)
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize(
    ("var", "value"), [("OTEL_TRACES", "jaeger"), ("OTEL_TRACES_SAMPLER_ARG", "1.5")]
)
def test_bad_tracing_settings_are_refused(var, value):
    with pytest.raises(SettingsError, match=var):
        ToySettings.from_env({var: value})


def test_the_file_exporter_writes_one_json_span_per_line(tmp_path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    path = tmp_path / "var" / "traces.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing.FileSpanExporter(path)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("one"), tracer.start_as_current_span("two"):
        pass
    provider.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["two", "one"]
    assert lines[0]["parent_id"] == lines[1]["context"]["span_id"]
