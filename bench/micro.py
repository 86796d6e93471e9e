"""Per-call cost of the chassis' hot-path pieces, and of what they replaced (``nox -s bench --
--micro``, or ``python bench/micro.py``). Best of several repeats, in ns per call: the minimum
is the least disturbed by other load on the machine.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import timeit
import types
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, Counter, Histogram

from svc_core import Schema, fields
from svc_core.logs import AccessLog, new_request_id
from svc_core.metrics import BUCKETS, Metrics
from svc_core.render import compile_dump, json_bytes
from svc_core.validation import validate_query

ROOT = Path(__file__).resolve().parents[1]
#: the commit before issue 16's changes: its access log, for comparison
BEFORE = "af80d99"


class MeOut(Schema):
    id = fields.String()
    username = fields.String()


class OrderOut(Schema):
    id = fields.String(attribute="_id")
    status = fields.String()
    total = fields.Integer()
    currency = fields.String()
    items = fields.List(
        fields.Nested(type("Line", (Schema,), {"sku": fields.String(), "qty": fields.Integer()}))
    )


def ns(stmt: Any, number: int = 20000, repeat: int = 7) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e9


def old_access_log() -> Any:
    """The access log as it was before (values kept per request, formatted at flush)."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:packages/svc_core/src/svc_core/logs.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("old_logs")
    exec(compile(source, "old_logs.py", "exec"), module.__dict__)
    return module.AccessLog


def rows() -> list[tuple[str, float, str]]:
    out: list[tuple[str, float, str]] = []
    me = {"id": "c-123", "username": "alice"}
    order = {
        "_id": "o1",
        "status": "pending",
        "total": 1999,
        "currency": "EUR",
        "owner": "c1",
        "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
    }
    for label, schema, value in (("MeOut", MeOut(), me), ("OrderOut", OrderOut(), order)):
        compiled = compile_dump(schema)
        assert compiled is not None
        assert compiled(value) == schema.dump(value)
        out.append(
            (f"render {label}: schema.dump", ns(lambda s=schema, v=value: s.dump(v)), "before")
        )
        out.append((f"render {label}: compiled", ns(lambda c=compiled, v=value: c(v)), "now"))
    data = OrderOut().dump(order)
    out.append(("JSON: json.dumps().encode()", ns(lambda: json.dumps(data).encode()), "before"))
    out.append(("JSON: orjson (json_bytes)", ns(lambda: json_bytes(data)), "now"))
    headers = {"Content-Type": "application/json; charset=utf-8", "Server": "svc"}
    out.append(("response: web.json_response", ns(lambda: web.json_response(me)), "before"))
    out.append(
        (
            "response: Response(body=orjson, headers)",
            ns(lambda: web.Response(body=json_bytes(me), headers=headers)),
            "now",
        )
    )
    out.append(("request id: uuid4()", ns(lambda: str(uuid.uuid4())), "reference"))
    out.append(("request id: prefix+counter", ns(new_request_id), "now"))

    async def logs() -> None:
        for label, cls, when in (("before", old_access_log(), "before"), ("now", AccessLog, "now")):
            log = cls("order", io.StringIO())
            if when == "before":
                args: tuple[Any, ...] = ("abc-1f", "GET", "/orders/o1", "/orders/{id}", 200, 0.43)
            else:
                args = ("abc-1f", "GET", "/orders/o1", "/orders/{id}", 200, 0.00043)

            # per line: write plus its share of the flush (formatting, joining, writing)
            def batch(log: Any = log, args: tuple[Any, ...] = args) -> None:
                for _ in range(256):
                    log.write(*args)
                log.flush()

            per = ns(batch, number=40, repeat=7) / 256
            out.append((f"access log line ({label}, write + flush share)", per, when))

    asyncio.run(logs())

    import orjson

    def orjson_line() -> bytes:  # the same line built as a dict and encoded by orjson
        return (
            orjson.dumps(
                {
                    "time": "2026-11-27T19:00:00.123Z",
                    "level": "info",
                    "service": "order",
                    "logger": "svc_core.access",
                    "message": "request",
                    "request_id": "abc-1f",
                    "method": "GET",
                    "path": "/orders/o1",
                    "route": "/orders/{id}",
                    "status": 200,
                    "duration_ms": round(0.00043 * 1000, 2),
                }
            )
            + b"\n"
        )

    from json.encoder import encode_basestring as quote

    stamp, head = '{"time": "2026-11-27T19:00:00.123Z', '", "level": "info", ...'

    def fstring_line() -> str:  # what AccessLog.write formats (constant parts prepared)
        return (
            f"{stamp}{head}{quote('abc-1f')}, "
            f'"method": "GET", "path": {quote("/orders/o1")}'
            f', "route": "/orders/{{id}}", "status": {200}, '
            f'"duration_ms": {0.00043 * 1000:.2f}}}\n'
        )

    out.append(("access line as AccessLog's f-string (format only)", ns(fstring_line), "now"))
    out.append(("access line built as a dict + orjson (format only)", ns(orjson_line), "rejected"))

    registry = CollectorRegistry()
    hist = Histogram("d", "d", ["service", "method", "route"], registry=registry, buckets=BUCKETS)
    count = Counter("r", "r", ["service", "method", "route", "status"], registry=registry)

    def prom() -> None:
        hist.labels("order", "GET", "/orders/{id}").observe(0.0004)
        count.labels("order", "GET", "/orders/{id}", "200").inc()

    child_h = hist.labels("order", "GET", "/orders/{id}")
    child_c = count.labels("order", "GET", "/orders/{id}", "200")

    def prom_bound() -> None:
        child_h.observe(0.0004)
        child_c.inc()

    metrics = Metrics("order")
    series = metrics.series("GET", "/orders/{id}", 200)
    from bisect import bisect_left

    def ours() -> None:
        series.count += 1
        series.total += 0.0004
        series.buckets[bisect_left(BUCKETS, 0.0004)] += 1

    out.append(("metrics: prometheus-client .labels().observe/.inc", ns(prom), "reference"))
    out.append(("metrics: prometheus-client pre-bound children", ns(prom_bound), "reference"))
    out.append(
        (
            "metrics: Metrics.observe (by labels)",
            ns(lambda: metrics.observe("GET", "/orders/{id}", 200, 0.0004)),
            "before",
        )
    )
    out.append(("metrics: bound Series, in place", ns(ours), "now"))

    request = make_mocked_request("GET", "/me")
    out.append(
        (
            "query check, no query: validate_query",
            ns(lambda: validate_query(request, None)),
            "before",
        )
    )
    out.append(
        ("query check, no query: '?' in raw_path", ns(lambda: "?" in request.raw_path), "now")
    )
    return out


def main() -> None:
    print(f"{'piece':<52} {'ns/call':>9}  when")
    for label, value, when in rows():
        print(f"{label:<52} {value:>9,.0f}  {when}", flush=True)


if __name__ == "__main__":
    main()
