"""The opentelemetry plugin (kong.yml, global): a span per proxied request continuing the
client's W3C traceparent, and the upstream given a traceparent naming the gateway's span."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from svc_core import Settings, tracing
from svc_gateway.config import ConfigError, load, parse
from svc_gateway.gateway import Gateway
from tests.gateway.conftest import SERVICES, recorded

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Any:
    tracing.configure(Settings.from_env({}, otel_traces="memory"), "gatewaytest")
    exporter = tracing.memory_exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


def test_kong_yml_enables_it_globally_with_w3c_propagation(render: Callable[..., Path]) -> None:
    config = load(render(dict.fromkeys(SERVICES, "h:1"), OTEL_TRACES_ENDPOINT="http://c:4318/x"))
    (plugin,) = [p for p in config.global_plugins if p.name == "opentelemetry"]
    assert plugin.config["traces_endpoint"] == "http://c:4318/x"
    assert plugin.config["sampling_rate"] == 1.0
    assert plugin.config["propagation"] == {"default_format": "w3c"}


async def test_a_proxied_request_is_a_span_the_upstream_continues(
    gateway: TestClient[Any, Any], upstream: TestServer, spans: Any
) -> None:
    response = await gateway.get(
        "/auth/jwks.json", headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"}
    )
    assert response.status == 200
    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET auth-jwks"]
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == CLIENT_SPAN
    assert span.attributes["svc.service"] == "gateway"
    assert span.attributes["http.response.status_code"] == 200
    sent = recorded(upstream)[-1]["headers"]["traceparent"]
    assert sent == f"00-{TRACE_ID}-{format(span.context.span_id, '016x')}-01"


async def test_without_a_traceparent_the_gateway_starts_the_trace(
    gateway: TestClient[Any, Any], upstream: TestServer, spans: Any
) -> None:
    assert (await gateway.get("/auth/jwks.json")).status == 200
    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET auth-jwks"]
    assert span.parent is None
    _, trace_id, span_id, _ = recorded(upstream)[-1]["headers"]["traceparent"].split("-")
    assert (trace_id, span_id) == (
        format(span.context.trace_id, "032x"),
        format(span.context.span_id, "016x"),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"traces_endpoint": None}, "traces_endpoint is required"),
        ({"sampling_rate": 2}, "between 0 and 1"),
        ({"propagation": {"default_format": "b3"}}, "only w3c"),
        ({"header_type": "jaeger"}, "preserve or w3c"),
    ],
)
def test_what_it_cannot_honour_is_a_startup_error(
    render: Callable[..., Path], change: dict[str, Any], message: str
) -> None:
    doc = yaml.safe_load(render(dict.fromkeys(SERVICES, "h:1")).read_text())
    (plugin,) = [p for p in doc["plugins"] if p["name"] == "opentelemetry"]
    plugin["config"].update(change)
    if change.get("traces_endpoint", "") is None:
        del plugin["config"]["traces_endpoint"]
    with pytest.raises(ConfigError, match=message):
        Gateway(parse(doc))
