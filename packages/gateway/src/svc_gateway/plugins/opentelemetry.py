"""opentelemetry (priority 14), K:kong/plugins/opentelemetry/handler.lua.

Kong starts (or continues, from the client's W3C ``traceparent``) a trace per request, exports
its spans over OTLP/HTTP to ``traces_endpoint`` and sends the upstream a ``traceparent`` naming
its own span. The local gateway does the same with the OpenTelemetry SDK of this process: when a
service in it (or svc-gateway itself, ``OTEL_TRACES``) configured svc_core's tracer provider, a
SERVER span per proxied request is recorded there (svc.service "gateway"); without one it only
propagates the client's context. ``traces_endpoint`` is Kong's; the local gateway exports where
the SDK does. ``sampling_rate`` is applied to traces the gateway starts. Only W3C propagation.
"""

from __future__ import annotations

import random
from typing import Any

from multidict import CIMultiDict
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from svc_gateway.config import ConfigError
from svc_gateway.plugins import Context, GatewayPlugin

SPAN = "opentelemetry.span"


class OpenTelemetry(GatewayPlugin):
    name = "opentelemetry"
    priority = 14

    def __init__(self, config: dict[str, Any], where: str) -> None:
        super().__init__(config, where)
        if not config["traces_endpoint"]:
            raise ConfigError(f"opentelemetry at {where}: traces_endpoint is required")
        if config["logs_endpoint"]:
            raise ConfigError(f"opentelemetry at {where}: logs_endpoint is not supported")
        if config["header_type"] not in ("preserve", "w3c"):
            raise ConfigError(f"opentelemetry at {where}: header_type must be preserve or w3c")
        propagation = config["propagation"] or {}
        unknown = set(propagation) - {"default_format", "extract", "inject", "clear"}
        formats = {propagation.get("default_format") or "w3c"}
        formats |= set(propagation.get("extract") or []) | set(propagation.get("inject") or [])
        if unknown or not formats <= {"w3c", "preserve"}:
            raise ConfigError(f"opentelemetry at {where}: only w3c propagation is supported")
        rate = config["sampling_rate"]
        if rate is not None and not (
            isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1
        ):
            raise ConfigError(f"opentelemetry at {where}: sampling_rate must be between 0 and 1")
        self.sampling_rate: float = 1.0 if rate is None else float(rate)
        self.trace_id_header: str | None = config["http_response_header_for_traceid"]

    async def access(self, ctx: Context) -> None:
        headers = ctx.request_headers
        parent = propagate.extract(headers)
        started_here = not trace.get_current_span(parent).get_span_context().is_valid
        if started_here and random.random() >= self.sampling_rate:  # noqa: S311 - sampling
            return
        request = ctx.request
        span = trace.get_tracer("svc_gateway").start_span(
            f"{request.method} {ctx.route.name}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "svc.service": "gateway",
                "http.request.method": request.method,
                "http.route": ctx.route.name,
                "url.path": ctx.state.get("path", request.path),
                "kong.service": ctx.service.name,
            },
        )
        ctx.state[SPAN] = span
        for name in ("traceparent", "tracestate"):
            ctx.upstream_headers.popall(name, None)
        # the upstream continues this span (or, with no SDK, the client's context as it came)
        propagate.inject(ctx.upstream_headers, context=trace.set_span_in_context(span, parent))

    def header_filter(self, ctx: Context, headers: CIMultiDict[str]) -> None:
        span = ctx.state.pop(SPAN, None)
        if span is None:
            return
        status = ctx.state.get("status")
        if isinstance(status, int):
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        if self.trace_id_header and span.get_span_context().is_valid:
            headers[self.trace_id_header] = format(span.get_span_context().trace_id, "032x")
        span.end()
