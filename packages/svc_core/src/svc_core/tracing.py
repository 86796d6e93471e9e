"""Distributed tracing on OpenTelemetry: one trace from the gateway to the databases.

Off by default (``OTEL_TRACES=off``): nothing here runs on a request then; the pipeline's
handlers are not even wrapped. With ``OTEL_TRACES=console|file|otlp|memory``:

- every request gets a SERVER span named after its route template (``POST /payments``),
  continuing the W3C ``traceparent``/``tracestate`` the caller (the gateway) sent;
- every :class:`~svc_core.client.ServiceClient` call is a CLIENT span and sends ``traceparent``;
- every event :meth:`~svc_core.events.EventBus.publish` writes carries ``traceparent`` (and
  ``tracestate``) as fields of its stream entry, and the :class:`~svc_core.events.Consumer`
  handles it in a CONSUMER span whose parent is that context: the order service's handling of
  ``payment.succeeded`` belongs to the payment request's trace;
- Redis commands are spans (opentelemetry-instrumentation-redis, which also covers fakeredis),
  and MongoDB operations too (a thin proxy over the database: it works on PyMongo's
  ``AsyncMongoClient`` and on the in-memory stand-in alike);
- every JSON log line written inside a span carries ``trace_id`` and ``span_id``.

Database spans with no parent (a consumer's blocking read, the revocation list's refresh) are
not recorded: they would each be a trace of their own, many per second, about nothing.

The tracer provider is process-wide (OpenTelemetry's global): the first service that starts with
tracing on configures it (exporter, sampling ratio, ``service.name``); every span also carries
``svc.service``, the service it was made in, which tells services apart where one process hosts
several (the dev stack, tests).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceState
from opentelemetry.util.types import Attributes

from svc_core import logs
from svc_core.logs import service_var

if TYPE_CHECKING:
    from aiohttp import web

    from svc_core.settings import Settings

MODES = ("off", "console", "file", "otlp", "memory")
#: the span attribute naming the service a span was made in
SERVICE_ATTR = "svc.service"
#: stream entry fields that carry the trace context of an event
EVENT_FIELDS = ("traceparent", "tracestate")

_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_memory: InMemorySpanExporter | None = None
#: the services of this process that trace (service_var tells whose code is running)
_traced: set[str] = set()


# --- setup ----------------------------------------------------------------------------------


class _RootFilter(Sampler):
    """Sample a trace's root only when it is work worth a trace (a request, an event handled or
    published); a database call with no parent is dropped. Children follow their parent."""

    def __init__(self, ratio: float) -> None:
        self.ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind in (SpanKind.CLIENT, SpanKind.INTERNAL, None):
            return SamplingResult(Decision.DROP)
        return self.ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RootFilter{{{self.ratio.get_description()}}}"


class _StampService(SpanProcessor):
    """Adds ``svc.service`` (from the logging context variable) to spans that lack it."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        name = service_var.get()
        if name is not None and not (span.attributes or {}).get(SERVICE_ATTR):
            span.set_attribute(SERVICE_ATTR, name)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class FileSpanExporter(SpanExporter):
    """One JSON object per finished span, appended to a file (``OTEL_TRACES=file``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Any) -> SpanExportResult:
        lines = "".join(
            json.dumps(json.loads(s.to_json()), separators=(",", ":")) + "\n" for s in spans
        )
        with self._lock:
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def _exporter(settings: Settings) -> tuple[SpanExporter, bool]:
    """The exporter ``settings`` ask for, and whether to batch its exports."""
    global _memory
    mode = settings.otel_traces
    if mode == "console":
        return ConsoleSpanExporter(), False
    if mode == "file":
        return FileSpanExporter(Path(settings.otel_traces_file)), False
    if mode == "memory":
        if _memory is None:
            _memory = InMemorySpanExporter()
        return _memory, False
    try:  # an extra: imported by name, so type checking needs no stubs for it
        otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "OTEL_TRACES=otlp needs the otlp extra: pip install 'svc-core[otlp]'"
        ) from exc
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
    exporter: SpanExporter = otlp.OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    return exporter, True


def configure(settings: Settings, service: str) -> bool:
    """Turn tracing on for this process if ``settings`` ask for it (the first caller's exporter
    and ratio win); whether tracing is on for this service."""
    global _provider, _tracer
    if settings.otel_traces == "off":
        _traced.discard(service)
        return False
    with _lock:
        _traced.add(service)
        if _provider is None:
            exporter, batch = _exporter(settings)
            provider = TracerProvider(
                resource=Resource.create({"service.name": service}),
                sampler=ParentBased(_RootFilter(settings.otel_traces_sampler_arg)),
            )
            provider.add_span_processor(_StampService())
            provider.add_span_processor(
                BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
            )
            with contextlib.suppress(Exception):
                trace.set_tracer_provider(provider)  # for other libraries; ours is explicit
            from opentelemetry.instrumentation.redis import RedisInstrumentor

            RedisInstrumentor().instrument(tracer_provider=provider)
            _provider = provider
            _tracer = provider.get_tracer("svc_core")
            logs.trace_ids = current_ids
    return True


def memory_exporter() -> InMemorySpanExporter:
    """The in-memory exporter ``OTEL_TRACES=memory`` records into (tests)."""
    global _memory
    if _memory is None:
        _memory = InMemorySpanExporter()
    return _memory


def enabled(service: str | None = None) -> bool:
    """Whether ``service`` (default: the one whose code is running) traces."""
    return _tracer is not None and (service or service_var.get()) in _traced


def tracer() -> trace.Tracer:
    assert _tracer is not None, "tracing is off"
    return _tracer


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None outside a recorded span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


# --- requests -------------------------------------------------------------------------------


def server(
    chassis: Callable[[web.Request], Any], handler: Any, route: str, service: str
) -> Callable[[web.Request], Any]:
    """``chassis`` (a route's wrapped handler) inside a SERVER span per request, continuing the
    caller's ``traceparent``. Used by :meth:`svc_core.pipeline.Chassis.wrap` when tracing is on."""
    tracer_ = tracer()

    async def traced(request: web.Request) -> Any:
        method = request.method
        parent = propagate.extract(request.headers)
        with tracer_.start_as_current_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                SERVICE_ATTR: service,
                "http.request.method": method,
                "http.route": route,
                "url.path": request.path,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await chassis(request)
            except BaseException:
                span.set_attribute("http.response.status_code", 499)
                raise
            status = response.status
            span.set_attribute("http.response.status_code", status)
            request_id = response.headers.get("X-Request-ID")
            if request_id:
                span.set_attribute("svc.request_id", request_id)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    functools.update_wrapper(traced, handler)
    return traced


@contextlib.contextmanager
def client_span(method: str, url: str, headers: MutableMapping[str, str]) -> Iterator[Any]:
    """A CLIENT span around a service call; ``traceparent`` injected into ``headers``. A no-op
    when tracing is off."""
    if _tracer is None or service_var.get() not in _traced:
        yield None
        return
    with _tracer.start_as_current_span(
        f"{method}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url},
    ) as span:
        propagate.inject(headers)
        yield span


# --- events ---------------------------------------------------------------------------------


def carrier() -> dict[str, str]:
    """The current trace context as ``traceparent``/``tracestate`` (empty when tracing is off or
    no span is current): what an outbox stores so its relay publishes the event in this trace."""
    if _tracer is None or service_var.get() not in _traced:
        return {}
    out: dict[str, str] = {}
    propagate.inject(out)
    return {k: v for k, v in out.items() if k in EVENT_FIELDS}


@contextlib.contextmanager
def publish_span(
    stream: str, type: str, fields: MutableMapping[Any, Any], parent: Mapping[str, str] | None
) -> Iterator[None]:
    """A PRODUCER span around writing an event, its context added to the entry's ``fields``.
    ``parent``: a stored carrier (an outbox's) to continue instead of the current context."""
    if _tracer is None or service_var.get() not in _traced:
        yield
        return
    ctx = propagate.extract(parent) if parent else None
    with _tracer.start_as_current_span(
        f"publish {stream}",
        context=ctx,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": stream,
            "messaging.operation.type": "send",
            "svc.event.type": type,
        },
    ):
        propagate.inject(fields)
        yield


@contextlib.contextmanager
def consume_span(stream: str, group: str, type: str, fields: Mapping[Any, Any]) -> Iterator[None]:
    """A CONSUMER span around handling an event, child of the context its entry carries."""
    if _tracer is None or service_var.get() not in _traced:
        yield
        return
    carried = {k: str(fields[k]) for k in EVENT_FIELDS if k in fields}
    with _tracer.start_as_current_span(
        f"process {stream}",
        context=propagate.extract(carried) if carried else otel_context.Context(),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": stream,
            "messaging.consumer.group.name": group,
            "messaging.operation.type": "process",
            "svc.event.type": type,
        },
    ):
        yield


# --- WebSockets -------------------------------------------------------------------------------


def current_link() -> Link | None:
    """A link to the current span (a WebSocket's handshake), for the spans of its frames."""
    if _tracer is None or service_var.get() not in _traced:
        return None
    ctx = trace.get_current_span().get_span_context()
    return Link(ctx) if ctx.is_valid else None


@contextlib.contextmanager
def frame_span(name: str, handshake: Link | None, **attributes: Any) -> Iterator[None]:
    """A span of its own per inbound WebSocket frame (a socket lives too long for one trace),
    linked to the socket's handshake span. A no-op when tracing is off."""
    if _tracer is None or service_var.get() not in _traced:
        yield
        return
    with _tracer.start_as_current_span(
        name,
        context=otel_context.Context(),
        kind=SpanKind.SERVER,
        links=[handshake] if handshake is not None else None,
        attributes=attributes,
    ):
        yield


# --- MongoDB ----------------------------------------------------------------------------------

#: collection methods that are coroutines on both PyMongo's async client and mongomock-motor
_MONGO_OPS = frozenset(
    {
        "insert_one",
        "insert_many",
        "find_one",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "count_documents",
        "estimated_document_count",
        "distinct",
        "bulk_write",
        "create_index",
    }
)


def _mongo_span(db_name: str, collection: str, op: str) -> Any:
    assert _tracer is not None
    return _tracer.start_as_current_span(
        f"{op} {collection}",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "mongodb",
            "db.namespace": db_name,
            "db.collection.name": collection,
            "db.operation.name": op,
        },
    )


class TracedCursor:
    """A cursor whose ``to_list`` is a span; iteration and chaining pass through."""

    def __init__(self, cursor: Any, db_name: str, collection: str, op: str) -> None:
        self._cursor = cursor
        self._where = (db_name, collection, op)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cursor, name)
        if name in ("sort", "limit", "skip", "batch_size", "hint", "max_time_ms"):

            def chained(*args: Any, **kwargs: Any) -> TracedCursor:
                self._cursor = attr(*args, **kwargs)
                return self

            return chained
        return attr

    async def to_list(self, *args: Any, **kwargs: Any) -> Any:
        with _mongo_span(*self._where):
            return await self._cursor.to_list(*args, **kwargs)

    def __aiter__(self) -> Any:
        return self._cursor.__aiter__()


class TracedCollection:
    """A collection whose operations are CLIENT spans (``find_one orders``)."""

    def __init__(self, collection: Any, db_name: str) -> None:
        self._collection = collection
        self._db_name = db_name

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name in _MONGO_OPS:
            db_name, collection = self._db_name, self._collection.name

            async def call(*args: Any, **kwargs: Any) -> Any:
                with _mongo_span(db_name, collection, name):
                    return await attr(*args, **kwargs)

            return call
        if name == "find":

            def find(*args: Any, **kwargs: Any) -> TracedCursor:
                cursor = attr(*args, **kwargs)
                return TracedCursor(cursor, self._db_name, self._collection.name, name)

            return find
        return attr

    def __getitem__(self, name: str) -> Any:
        return TracedCollection(self._collection[name], self._db_name)


class TracedDatabase:
    """A database whose collections are :class:`TracedCollection` (``db["orders"]``,
    ``db.orders``, ``db.get_collection("orders")``)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.name = db.name

    def __getitem__(self, name: str) -> TracedCollection:
        return TracedCollection(self._db[name], self.name)

    def get_collection(self, name: str, *args: Any, **kwargs: Any) -> TracedCollection:
        return TracedCollection(self._db.get_collection(name, *args, **kwargs), self.name)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._db, name)
        if name.startswith("_") or not hasattr(attr, "find_one"):
            return attr
        return TracedCollection(attr, self.name)


def trace_database(db: Any, service: str) -> Any:
    """``db`` with spans around its operations when ``service`` traces, else ``db`` itself."""
    return TracedDatabase(db) if enabled(service) else db
