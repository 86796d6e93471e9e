"""Write deploy/observability/dashboards/<name>.json: a Grafana dashboard per service and one
for the gateway (Kong's prometheus plugin).

    python deploy/observability/dashboards.py          # rewrite the files
    python deploy/observability/dashboards.py --check  # exit 1 if a committed file differs

Every service's dashboard has the same rows (traffic, errors, latency, readiness), built from
the chassis' metrics (svc_core.metrics); a service with more (event consumers, the payment
outbox, chat's WebSockets) gets extra rows from the tables below. The files are committed, so
Grafana can import them as they are; tests/deploy/test_observability.py checks they are up to
date and that every query names only metrics the services really export.

The services are read from the packages (their ``svc.services`` entry points, as nox and the dev
stack find them), so adding a service needs no row here: run this (``svc-core new`` writes the
new service's file itself). A service that consumes events, has an outbox or WebSockets, or
uses Audit() needs its row in EXTRAS. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
ROOT = HERE.parent.parent

RATE = "$__rate_interval"
#: routes whose duration is a transfer or a socket's life, not a response time (left out of
#: the latency panels and the p99 alert; their traffic and errors are still counted)
LONG_LIVED = r"/chat/ws|/files|/files/\\{file_id\\}/content|/files/uploads/\\{upload_id\\}"

#: service -> the extra rows it gets ("events": it consumes a stream; "outbox", "websockets",
#: "audit": it writes audit records, svc_core.audit); a service with none has no row
EXTRAS: dict[str, tuple[str, ...]] = {
    "customer": ("audit",),
    "order": ("events",),
    "payment": ("events", "outbox", "audit"),
    "chat": ("websockets", "audit"),
    "files": ("audit",),
}


def registered() -> list[str]:
    """The services: the ``svc.services`` entry points in packages/*/pyproject.toml (what nox,
    the dev stack and ``svc-core new`` read), without importing anything."""
    found: list[str] = []
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        found += list(project.get("entry-points", {}).get("svc.services", {}))
    return found


#: service -> its extra rows: every registered service
SERVICES: dict[str, tuple[str, ...]] = {name: EXTRAS.get(name, ()) for name in registered()}

Panel = dict[str, Any]


def panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
) -> Panel:
    """A panel of ``targets`` (PromQL, legend); placed by :func:`dashboard`."""
    out: Panel = {
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    if description:
        out["description"] = description
    if kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    return out


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def service_rows(service: str) -> list[Panel]:
    s = f'service="{service}"'
    quick = f'{s},route!~"{LONG_LIVED}"'
    rows: list[Panel] = [
        row("Traffic and errors"),
        panel(
            "Requests per second by route",
            [(f"sum by (route) (rate(http_requests_total{{{s}}}[{RATE}]))", "{{route}}")],
            unit="reqps",
        ),
        panel(
            "Responses per second by status",
            [(f"sum by (status) (rate(http_requests_total{{{s}}}[{RATE}]))", "{{status}}")],
            unit="reqps",
        ),
        panel(
            "Server errors (5xx) share",
            [
                (
                    f'sum(rate(http_requests_total{{{s},status=~"5.."}}[{RATE}]))'
                    f" / sum(rate(http_requests_total{{{s}}}[{RATE}]))",
                    "5xx / all",
                )
            ],
            unit="percentunit",
            description="What the SvcHighErrorRate alert watches (above 5% for 5 minutes).",
        ),
        panel(
            "Client errors (4xx) by route",
            [
                (
                    f'sum by (route, status) (rate(http_requests_total{{{s},status=~"4.."}}'
                    f"[{RATE}]))",
                    "{{route}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        row("Latency"),
        panel(
            "Latency p50 / p95 / p99",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(http_request_duration_seconds_bucket{{{quick}}}[{RATE}])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            description="Streams and WebSockets left out: their duration is a transfer's.",
        ),
        panel(
            "Latency p99 by route",
            [
                (
                    "histogram_quantile(0.99, sum by (route, le) "
                    f"(rate(http_request_duration_seconds_bucket{{{s}}}[{RATE}])))",
                    "{{route}}",
                )
            ],
            unit="s",
        ),
        row("Health"),
        panel(
            "Instances up (scraped)",
            [(f'sum(up{{job="svc",{s}}})', "up")],
            kind="stat",
        ),
        panel(
            "Instances ready",
            [(f"sum(svc_ready{{{s}}})", "ready")],
            kind="stat",
            description="svc_ready is /ready as a metric: 1 when every dependency answers.",
        ),
        panel(
            "Readiness checks failing",
            [(f"count by (check) (svc_ready_check{{{s}}} == 0)", "{{check}}")],
        ),
    ]
    extras = EXTRAS.get(service, ())
    if "events" in extras:
        rows += [
            row("Events (Redis Streams consumer groups)"),
            panel(
                "Oldest unfinished event age",
                [
                    (
                        f"max by (stream, group) (svc_events_oldest_age_seconds{{{s}}})",
                        "{{stream}} / {{group}}",
                    )
                ],
                unit="s",
                description="Above 60 s for 5 minutes: SvcEventLag.",
            ),
            panel(
                "Pending (delivered, not acked) and undelivered",
                [
                    (
                        f"max by (stream, group) (svc_events_pending{{{s}}})",
                        "pending {{stream}}",
                    ),
                    (f"max by (stream, group) (svc_events_lag{{{s}}})", "lag {{stream}}"),
                ],
            ),
            panel(
                "Dead-lettered events",
                [
                    (
                        f"sum by (stream, group) "
                        f"(increase(svc_events_dead_lettered_total{{{s}}}[{RATE}]))",
                        "parked {{stream}}",
                    ),
                    (
                        f"max by (stream) (svc_events_dead_letter_entries{{{s}}})",
                        "in {{stream}}:dead",
                    ),
                ],
            ),
        ]
    if "outbox" in extras:
        rows += [
            row("Outbox"),
            panel(
                "Events waiting to be published",
                [(f"max(svc_outbox_pending_events{{{s}}})", "pending")],
            ),
            panel(
                "Oldest unpublished event age",
                [(f"max(svc_outbox_oldest_age_seconds{{{s}}})", "oldest")],
                unit="s",
                description="Above 60 s for 5 minutes: SvcOutboxBacklog.",
            ),
            panel(
                "Events published per second",
                [(f"sum(rate(svc_outbox_published_total{{{s}}}[{RATE}]))", "published")],
                unit="ops",
            ),
        ]
    if "websockets" in extras:
        rows += [
            row("WebSockets"),
            panel("Open sockets", [(f"sum(svc_ws_connections{{{s}}})", "open")]),
            panel(
                "Fullest send queue (frames)",
                [
                    (f"max(svc_ws_send_queue_depth_max{{{s}}})", "deepest"),
                    (f"max(svc_ws_send_queue_limit{{{s}}})", "limit (then 1013)"),
                ],
            ),
            panel(
                "Slow consumers cut off (1013) per minute",
                [
                    (
                        f"sum(increase(svc_ws_slow_consumer_closes_total{{{s}}}[{RATE}]))",
                        "closed",
                    )
                ],
            ),
        ]
    if "audit" in extras:
        rows += [
            row("Audit log"),
            panel(
                "Audit records per second",
                [
                    (
                        f"sum by (action, outcome) (rate(svc_audit_records_total{{{s}}}[{RATE}]))",
                        "{{action}} {{outcome}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "Audit writes failed",
                [
                    (
                        f"sum by (reason) (increase(svc_audit_failures_total{{{s}}}[{RATE}]))",
                        "{{reason}}",
                    )
                ],
                description="Any failure for 10 minutes: SvcAuditWriteFailures.",
            ),
        ]
    return rows


def gateway_rows() -> list[Panel]:
    return [
        row("Traffic and errors (Kong)"),
        panel(
            "Requests per second by service",
            [(f"sum by (service) (rate(kong_http_requests_total[{RATE}]))", "{{service}}")],
            unit="reqps",
        ),
        panel(
            "Responses per second by status code",
            [(f"sum by (code) (rate(kong_http_requests_total[{RATE}]))", "{{code}}")],
            unit="reqps",
        ),
        panel(
            "Server errors (5xx) share by service",
            [
                (
                    f'sum by (service) (rate(kong_http_requests_total{{code=~"5.."}}[{RATE}]))'
                    f" / sum by (service) (rate(kong_http_requests_total[{RATE}]))",
                    "{{service}}",
                )
            ],
            unit="percentunit",
        ),
        panel(
            "Rate limited (429) and refused (401) per second",
            [
                (
                    f'sum by (code) (rate(kong_http_requests_total{{code=~"429|401"}}[{RATE}]))',
                    "{{code}}",
                )
            ],
            unit="reqps",
        ),
        row("Latency (Kong, milliseconds)"),
        panel(
            "Request latency p99 by service",
            [
                (
                    "histogram_quantile(0.99, sum by (service, le) "
                    f"(rate(kong_request_latency_ms_bucket[{RATE}])))",
                    "{{service}}",
                )
            ],
            unit="ms",
        ),
        panel(
            "Upstream latency p99 by service",
            [
                (
                    "histogram_quantile(0.99, sum by (service, le) "
                    f"(rate(kong_upstream_latency_ms_bucket[{RATE}])))",
                    "{{service}}",
                )
            ],
            unit="ms",
        ),
        panel(
            "Kong's own latency p99",
            [
                (
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(kong_kong_latency_ms_bucket[{RATE}])))",
                    "kong",
                )
            ],
            unit="ms",
        ),
        row("Upstreams and connections"),
        panel(
            "Upstream targets not healthy",
            [
                (
                    'sum by (upstream, target) (kong_upstream_target_health{state!="healthy"})',
                    "{{upstream}} {{target}}",
                )
            ],
            description="Kong's active health checks (kong.yml upstreams), per target.",
        ),
        panel(
            "Connections",
            [("sum by (state) (kong_nginx_connections_total)", "{{state}}")],
        ),
        panel("Kong nodes up (scraped)", [('sum(up{job="kong"})', "up")], kind="stat"),
    ]


def dashboard(name: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    """The dashboard: panels laid out two per line, each row on a line of its own."""
    y, x = 0, 0
    for index, item in enumerate(panels):
        if item["type"] == "row":
            y += 0 if x == 0 else 8
            x = 0
            item["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
        else:
            item["gridPos"] = {"h": 8, "w": 12, "x": x, "y": y}
            x = 12 - x
            y += 8 if x == 0 else 0
        item["id"] = index + 1
    return {
        "uid": f"svc-{name}",
        "title": title,
        "tags": ["svc", name],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def as_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def service_file(name: str) -> tuple[Path, str]:
    """dashboards/<name>.json and its text, for any service name (registered or about to be:
    ``svc-core new`` writes its new service's file with this)."""
    return OUT / f"{name}.json", as_text(dashboard(name, f"svc / {name}", service_rows(name)))


def files() -> dict[Path, str]:
    out = dict(service_file(name) for name in SERVICES)
    gateway = dashboard("gateway", "svc / gateway (Kong)", gateway_rows())
    out[OUT / "gateway.json"] = as_text(gateway)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    wanted = files()
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    extra = sorted(set(OUT.glob("*.json")) - set(wanted)) if OUT.exists() else []
    if args.check:
        for path in [*stale, *extra]:
            print(f"{path.relative_to(HERE.parent.parent)}: out of date; run {__file__}")
        return 1 if stale or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path in extra:
        path.unlink()
    for path, text in wanted.items():
        path.write_text(text)
    print(f"wrote {len(wanted)} dashboards into {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
