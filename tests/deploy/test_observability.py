"""deploy/observability: the dashboards, the alert rules, the scrape config and the collector.

- the dashboards are what dashboards.py writes; one per service and one for the gateway; every
  query names only metrics the services really export (read from the /metrics of every service
  of a running dev stack) or Kong's prometheus plugin exports;
- the alert rules and the scrape config pass ``promtool check``; the rules pass their unit
  tests (``promtool test rules``); every rule has a runbook section in docs/observability.md;
- the OpenTelemetry Collector config is one pipeline that compose and Kubernetes both use, and
  the services' OTEL_* settings point at it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from svc_core import Audit, discover
from svc_core.settings import Settings
from svc_devstack.stack import Stack, services
from tests.deploy.conftest import DEPLOY, KONG_TEMPLATE, ROOT, by_kind, in_ci, load_script
from tests.e2e.conftest import running_stack

OBS = DEPLOY / "observability"
DASHBOARDS = OBS / "dashboards"

#: what Kong 3.9's prometheus plugin exports with kong.yml's flags (status_code_metrics,
#: latency_metrics, upstream_health_metrics): kong/plugins/prometheus/exporter.lua at 3.9.1
KONG_METRICS = {
    "kong_http_requests_total",
    "kong_request_latency_ms_bucket",
    "kong_upstream_latency_ms_bucket",
    "kong_kong_latency_ms_bucket",
    "kong_request_latency_ms_count",
    "kong_request_latency_ms_sum",
    "kong_upstream_target_health",
    "kong_nginx_connections_total",
    "kong_nginx_requests_total",
    "kong_datastore_reachable",
    "kong_memory_lua_shared_dict_bytes",
    "kong_memory_workers_lua_vms_bytes",
    "kong_bandwidth_bytes",
    "kong_node_info",
}

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk",
    "bottomk", "quantile", "count_values", "group", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names and
    Grafana's $variables left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word in _PROMQL_WORDS:
            continue  # a function or an aggregation
        if re.fullmatch(r"\d+\w*", word) or (match.start() and text[match.start() - 1].isdigit()):
            continue
        names.add(word)
    return names


def test_metric_names_reads_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket"
        '{route!~"/a|/b"}[5m]))) > 0.5 and on(service) up{job="svc"} == 0 or vector(1e3)'
    )
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}
    assert metric_names("sum(rate(x_total[$__rate_interval])) / sum(y)") == {"x_total", "y"}


# --- the dashboards ---------------------------------------------------------------------------


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboards_are_what_the_script_writes() -> None:
    script = load_script("deploy/observability/dashboards.py")
    assert script.main(["--check"]) == 0, "run python deploy/observability/dashboards.py"
    assert set(script.SERVICES) == set(services()), "dashboards.py: a dashboard per service"
    assert set(script.EXTRAS) <= set(services()), "dashboards.py EXTRAS: a row of no service"
    audited = {name for name, m in discover().items() if m.uses_resource(Audit)}
    shown = {name for name, extras in script.SERVICES.items() if "audit" in extras}
    assert shown == audited, "dashboards.py: an audit row exactly for the services with Audit()"


def test_every_service_and_the_gateway_has_a_dashboard() -> None:
    found = dashboards()
    assert set(found) == {*services(), "gateway"}
    uids = [d["uid"] for d in found.values()]
    assert len(set(uids)) == len(uids)
    for name, dashboard in found.items():
        assert dashboard["title"], name
        assert dashboard["schemaVersion"] >= 36, name
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        assert len(panels) >= 6, name
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(set(ids)) == len(ids), name
        for item in panels:
            where = f"{name}: {item['title']}"
            assert item["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert item["targets"], where
            for target in item["targets"]:
                assert target["expr"].count("(") == target["expr"].count(")"), where
            assert {"h", "w", "x", "y"} <= set(item["gridPos"]), where
            assert item["gridPos"]["x"] + item["gridPos"]["w"] <= 24, where
        if name != "gateway":  # the service's own series only
            for expr in queries(dashboard):
                assert f'service="{name}"' in expr, f"{name}: {expr}"


@pytest.fixture
async def stack(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Every service and the local gateway (with its status listener), as `nox -s dev`."""
    async with running_stack(redis_url, tmp_path, status=True) as running:
        yield running


def exported(text: str) -> set[str]:
    """The sample names a /metrics body can carry: every family's, samples or not yet."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


async def test_every_query_names_only_metrics_that_are_exported(stack: Stack) -> None:
    by_service: dict[str, set[str]] = {}
    async with aiohttp.ClientSession() as http:
        for name in services():
            async with http.get(f"{stack.urls[name][0]}/metrics") as resp:
                assert resp.status == 200, name
                by_service[name] = exported(await resp.text()) | {"up"}
        status = f"http://127.0.0.1:{stack.options.status_port}/metrics"
        async with http.get(status) as resp:
            gateway = exported(await resp.text())
    assert gateway, "the local gateway's prometheus plugin exports nothing"
    assert gateway <= KONG_METRICS, f"the local gateway exports {gateway - KONG_METRICS}"
    # each feature's metrics where the code has it
    assert "svc_events_oldest_age_seconds" in by_service["order"]
    assert "svc_outbox_pending_events" in by_service["payment"]
    assert "svc_ws_connections" in by_service["chat"]
    assert "svc_ready" in by_service["web"]

    for name, dashboard in dashboards().items():
        allowed = KONG_METRICS | {"up"} if name == "gateway" else by_service[name]
        for expr in queries(dashboard):
            unknown = metric_names(expr) - allowed
            assert not unknown, f"dashboards/{name}.json: {sorted(unknown)} not exported: {expr}"

    everything = set().union(*by_service.values()) | KONG_METRICS
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - everything
        assert not unknown, f"alerts.yml {rule['alert']}: {sorted(unknown)} not exported"


# --- the alert rules --------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((OBS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_has_a_severity_a_description_and_a_runbook_section() -> None:
    docs = (ROOT / "docs" / "observability.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", docs, re.M)
    }
    names = [rule["alert"] for rule in alert_rules()]
    assert len(set(names)) == len(names)
    wanted = {
        "SvcHighErrorRate", "SvcHighLatencyP99", "SvcDown", "SvcNotReady", "SvcEventLag",
        "SvcOutboxBacklog", "SvcEventsDeadLettered", "SvcAuditWriteFailures",
    }  # fmt: skip
    assert wanted <= set(names)
    for rule in alert_rules():
        where = rule["alert"]
        assert rule["labels"]["severity"] in {"page", "warn"}, where
        annotations = rule["annotations"]
        assert annotations["summary"], where
        assert annotations["description"], where
        path, _, anchor = annotations["runbook"].partition("#")
        assert path == "docs/observability.md", where
        assert anchor == where.lower(), where
        assert anchor in headings, f"{where}: no '### {where}' section in docs/observability.md"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian: apt-get install prometheus; .ci/run does)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=OBS, capture_output=True, text=True, check=False, timeout=60
    )


def test_promtool_accepts_the_rules_and_the_scrape_config() -> None:
    rules = run_promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in rules.stdout
    config = run_promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_alerts_pass_their_promtool_unit_tests() -> None:
    result = run_promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load((OBS / "alerts.test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert {"SvcHighErrorRate", "SvcEventLag", "SvcOutboxBacklog"} <= tested


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(\n")
    result = subprocess.run(
        [promtool(), "check", "rules", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_prometheus_scrapes_every_service_and_kong() -> None:
    config = yaml.safe_load((OBS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert config["rule_files"] == ["alerts.yml"]
    targets = {
        group["labels"]["service"]: group["targets"] for group in jobs["svc"]["static_configs"]
    }
    registered = services()
    assert set(targets) == set(registered)
    for name, service in registered.items():
        assert targets[name] == [f"{name}:{service.port}"], name
    assert jobs["svc"]["honor_labels"] is True  # the services' own `service` label
    assert jobs["kong"]["static_configs"] == [{"targets": ["kong:8100"]}]


# --- the OpenTelemetry Collector --------------------------------------------------------------


def collector_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OBS / "otel-collector.yaml").read_text())
    return data


def test_the_collector_receives_otlp_and_limits_memory_before_batching() -> None:
    config = collector_config()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"][0] == "memory_limiter"
    assert pipeline["processors"][-1] == "batch"
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline[kind]:
            assert component in config[kind], f"{kind}: {component} is not defined"
    assert pipeline["exporters"] == ["debug"]  # the default; a backend is documented
    text = (OBS / "otel-collector.yaml").read_text()
    assert "# otlp/backend:" in text


def test_compose_and_kubernetes_run_the_collector_and_point_the_services_at_it(
    compose: dict[str, Any], overlays: dict[str, list[dict[str, Any]]]
) -> None:
    collector = compose["services"]["otel-collector"]
    assert collector["command"] == ["--config=/etc/otelcol/config.yaml"]
    assert collector["configs"][0]["target"] == "/etc/otelcol/config.yaml"
    source = compose["configs"][collector["configs"][0]["source"]]["file"]
    assert Path(source).resolve() == (OBS / "otel-collector.yaml").resolve()
    assert set(collector["networks"]) == {"backend"}  # internal: reached by Kong and services
    read = set(Settings.variables())
    for name in services():
        env = compose["services"][name]["environment"]
        assert env["OTEL_TRACES"] == "off", name  # tracing stays off unless asked for
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318", name
        assert {k for k in env if k.startswith("OTEL_")} <= read, name
    kong_endpoint = re.search(r"traces_endpoint: \$\{OTEL_TRACES_ENDPOINT:-([^}]+)\}",
                              KONG_TEMPLATE.read_text())  # fmt: skip
    assert kong_endpoint is not None
    assert kong_endpoint.group(1) == "http://otel-collector:4318/v1/traces"

    for overlay, docs in overlays.items():
        config = by_kind(docs, "ConfigMap")
        assert yaml.safe_load(config["otel-collector"]["data"]["config.yaml"]) == collector_config()
        assert config["svc-config"]["data"]["OTEL_TRACES"] == "off", overlay
        assert config["svc-config"]["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            "http://otel-collector:4318"
        )
        service = by_kind(docs, "Service")["otel-collector"]
        assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318}, overlay
        (container,) = by_kind(docs, "Deployment")["otel-collector"]["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["image"] == collector["image"], "the same collector as compose"
        assert container["readinessProbe"]["httpGet"]["port"] == "health"


def test_ci_installs_promtool() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "command -v promtool" in ci
    assert "apt-get install -y -qq prometheus" in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
