"""One trace from the gateway to the databases (issue 20): a payment through the local gateway,
the whole stack in this process with OTEL_TRACES=memory (the SDK's in-memory exporter)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from svc_core import tracing
from svc_core.logs import JSONFormatter
from svc_core.testing import eventually
from svc_devstack.stack import Stack
from tests.e2e.conftest import running_stack
from tests.e2e.test_journey import call, sign_up

TRACED = {"OTEL_TRACES": "memory"}  # spans kept in the SDK's in-memory exporter
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The services' JSON log lines (INFO and up) while the test runs."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter("test"))
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger(name) for name in ("svc_payment", "svc_order")]
    levels = [lg.level for lg in loggers]
    root = logging.getLogger()
    root.addHandler(handler)
    for lg in loggers:
        lg.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@pytest.fixture
async def traced_stack(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    tracing.memory_exporter().clear()
    try:
        async with running_stack(redis_url, tmp_path, environ=TRACED) as stack:
            yield stack
    finally:
        tracing.memory_exporter().clear()


def service_of(span: Any) -> str:
    return str(span.attributes.get(tracing.SERVICE_ATTR))


def parent_of(span: Any, spans: list[Any]) -> Any:
    assert span.parent is not None, f"{span.name} has no parent"
    (found,) = [s for s in spans if s.context.span_id == span.parent.span_id]
    return found


def ancestors(span: Any, spans: list[Any]) -> list[Any]:
    chain = []
    while span.parent is not None:
        span = parent_of(span, spans)
        chain.append(span)
    return chain


def one(spans: list[Any], name: str, service: str) -> Any:
    found = [s for s in spans if s.name == name and service_of(s) == service]
    assert len(found) == 1, (name, service, [(s.name, service_of(s)) for s in spans])
    return found[0]


async def test_a_payment_is_one_trace_from_the_gateway_to_the_databases(
    traced_stack: Stack, http: aiohttp.ClientSession, log_lines: io.StringIO
) -> None:
    gw = traced_stack.gateway_url
    _, token = await sign_up(http, gw)
    order_body = {
        "currency": "EUR",
        "items": [{"sku": "tea-1", "name": "Green tea", "quantity": 1, "unit_price": 450}],
    }
    status, order, _ = await call(http, "POST", f"{gw}/orders", token, json=order_body)
    assert status == 201, order
    exporter = tracing.memory_exporter()
    exporter.clear()

    status, payment, _ = await call(
        http, "POST", f"{gw}/payments", token,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"order_id": order["id"], "card": CARD},
    )  # fmt: skip
    assert status == 201, payment

    def spans() -> list[Any]:
        return list(exporter.get_finished_spans())

    async def consumed() -> bool:
        return any(
            s.name == "process events:payments" and service_of(s) == "order" for s in spans()
        )

    assert await eventually(consumed, timeout=5.0, interval=0.05)
    every = spans()

    gateway = one(every, "POST payments", "gateway")
    assert gateway.parent is None  # the gateway's span is the trace's first
    trace_id = gateway.context.trace_id
    in_trace = [s for s in every if s.context.trace_id == trace_id]

    served = one(in_trace, "POST /payments", "payment")
    assert parent_of(served, in_trace) is gateway
    # payment → (HTTP) order: a client span in the payment service, the order service's span
    fetch = one(in_trace, "GET /orders/{order_id}", "order")
    client = parent_of(fetch, in_trace)
    assert (client.name, service_of(client)) == ("GET", "payment")
    assert served in ancestors(client, in_trace)
    # payment → (event) order: published by the outbox relay in the request's trace, handled
    # by the order service's consumer as the publish span's child
    publish = one(in_trace, "publish events:payments", "payment")
    assert served in ancestors(publish, in_trace)
    process = one(in_trace, "process events:payments", "order")
    assert parent_of(process, in_trace) is publish
    assert process.attributes["messaging.consumer.group.name"] == "order"

    def db_spans(under: Any, system: str) -> list[Any]:
        key = "db.system.name" if system == "mongodb" else "db.system"
        return [
            s
            for s in in_trace
            if s.attributes.get(key) == system and under in ancestors(s, in_trace)
        ]

    # MongoDB and Redis under the payment request, the order request and the order's consumer
    assert db_spans(served, "mongodb"), "payment's MongoDB writes"
    assert db_spans(served, "redis"), "payment's Redis calls (revocations, idempotency)"
    assert db_spans(fetch, "mongodb"), "order's MongoDB read"
    assert db_spans(process, "mongodb"), "the consumer's order update"
    assert any(s.name == "XADD" for s in db_spans(publish, "redis"))
    assert {service_of(s) for s in db_spans(process, "mongodb")} == {"order"}

    # the same trace id in both services' log lines
    hex_id = format(trace_id, "032x")
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    by_message = {line["message"]: line for line in lines if line.get("trace_id") == hex_id}
    assert by_message["payment succeeded"]["service"] == "payment"
    assert by_message["order paid"]["service"] == "order"


@pytest.fixture
async def two_traced_chats(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    tracing.memory_exporter().clear()
    try:
        async with running_stack(redis_url, tmp_path, twice=["chat"], environ=TRACED) as stack:
            yield stack
    finally:
        tracing.memory_exporter().clear()


async def test_a_chat_message_sent_on_one_instance_and_delivered_on_another_is_linked_spans(
    two_traced_chats: Stack, http: aiohttp.ClientSession
) -> None:
    from tests.e2e.test_chat import expect

    gw = two_traced_chats.gateway_url
    _, token = await sign_up(http, gw)
    _, room, _ = await call(http, "POST", f"{gw}/chat/rooms", token, json={"name": "traced"})
    # round robin: consecutive handshakes land on different instances
    sockets = [await http.ws_connect(f"{gw}/chat/ws", params={"jwt": token}) for _ in range(2)]
    for ws in sockets:
        await ws.send_json({"type": "join", "room_id": room["id"]})
        await expect(ws, "joined")
    exporter = tracing.memory_exporter()
    exporter.clear()
    sender, receiver = sockets
    await sender.send_json(
        {"type": "message", "room_id": room["id"], "body": "hi", "client_id": "1"}
    )
    ack = await expect(sender, "ack")
    assert (await expect(receiver, "message"))["message"] == ack["message"]

    def spans() -> list[Any]:
        return list(exporter.get_finished_spans())

    async def delivered() -> bool:
        return any(
            s.name.startswith("process chat") and s.attributes["svc.event.type"] == "message"
            for s in spans()
        )

    assert await eventually(delivered, timeout=5.0, interval=0.05)
    for ws in sockets:
        await ws.close()
    every = spans()
    deliveries = [
        s
        for s in every
        if s.name.startswith("process chat") and s.attributes["svc.event.type"] == "message"
    ]
    assert deliveries
    # each delivery (on both instances: the sender's ignores its own copy) is a child of the
    # sending frame's span, which links to the sender socket's handshake span
    (parent_id,) = {s.parent.span_id for s in deliveries if s.parent is not None}
    (frame,) = [s for s in every if s.context.span_id == parent_id]
    assert (frame.name, service_of(frame)) == ("chat frame", "chat")
    assert {s.context.trace_id for s in deliveries} == {frame.context.trace_id}
    (link,) = frame.links
    assert link.context.trace_id != frame.context.trace_id

    # the handshakes' own spans end when the sockets close: the link names one of them
    async def handshakes_ended() -> bool:
        return len([s for s in spans() if s.name == "GET /chat/ws"]) == 2

    assert await eventually(handshakes_ended, timeout=10.0, interval=0.05)
    handshakes = {s.context.span_id for s in spans() if s.name == "GET /chat/ws"}
    assert link.context.span_id in handshakes
