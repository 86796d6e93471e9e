"""The rendered kong.yml, parsed into the subset of Kong 3.x the local gateway honours.

DEVELOPMENT TOOL. Anything the local gateway cannot reproduce faithfully (an unknown entity
field, an unknown plugin, a config value it cannot honour) raises :class:`ConfigError` at
startup: silently ignoring it would make local behaviour differ from Kong's without anyone
noticing. Defaults are Kong 3.9's schema defaults (shared/kong.md §1-§4).
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

# Kong 3.9 plugin schema defaults (K:kong/plugins/<name>/schema.lua).
PLUGIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "jwt": {
        "uri_param_names": ["jwt"],
        "cookie_names": [],
        "header_names": ["authorization"],
        "key_claim_name": "iss",
        "secret_is_base64": False,
        "claims_to_verify": None,
        "maximum_expiration": 0,
        "anonymous": None,
        "run_on_preflight": True,
        "realm": None,
    },
    "rate-limiting": {
        "second": None,
        "minute": None,
        "hour": None,
        "day": None,
        "month": None,
        "year": None,
        "limit_by": "consumer",
        "header_name": None,
        "path": None,
        "policy": "local",
        "fault_tolerant": True,
        "hide_client_headers": False,
        "error_code": 429,
        "error_message": "API rate limit exceeded",
        "sync_rate": -1,
        "redis": None,
    },
    "cors": {
        "origins": None,
        "headers": None,
        "exposed_headers": None,
        "methods": ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"],
        "max_age": None,
        "credentials": False,
        "private_network": False,
        "preflight_continue": False,
    },
    "correlation-id": {
        "header_name": "Kong-Request-ID",
        "generator": "uuid#counter",
        "echo_downstream": False,
    },
    "request-size-limiting": {
        "allowed_payload_size": 128,
        "size_unit": "megabytes",
        "require_content_length": False,
    },
    # serverless-functions: Lua per phase. Only the snippet kong.yml ships is accepted
    # (plugins/pre_function.py); the local gateway runs no Lua.
    "pre-function": {
        "certificate": [],
        "rewrite": [],
        "access": [],
        "header_filter": [],
        "body_filter": [],
        "log": [],
    },
    # propagation, and spans through this process's OpenTelemetry SDK (plugins/opentelemetry.py)
    "opentelemetry": {
        "traces_endpoint": None,
        "logs_endpoint": None,
        "headers": None,
        "resource_attributes": None,
        "queue": None,
        "batch_span_count": None,
        "batch_flush_delay": None,
        "connect_timeout": 1000,
        "send_timeout": 5000,
        "read_timeout": 5000,
        "http_response_header_for_traceid": None,
        "header_type": "preserve",
        "sampling_rate": None,
        "propagation": None,
    },
    "prometheus": {
        "per_consumer": False,
        "status_code_metrics": False,
        "latency_metrics": False,
        "bandwidth_metrics": False,
        "upstream_health_metrics": False,
        "ai_metrics": False,
    },
}
REDIS_DEFAULTS: dict[str, Any] = {
    "host": None,
    "port": 6379,
    "timeout": 2000,
    "connect_timeout": None,
    "send_timeout": None,
    "read_timeout": None,
    "username": None,
    "password": None,
    "database": 0,
    "ssl": False,
    "ssl_verify": False,
    "server_name": None,
    "keepalive_pool_size": 256,
    "keepalive_backlog": None,
}
ACTIVE_DEFAULTS: dict[str, Any] = {
    "type": "http",
    "http_path": "/",
    "timeout": 1,
    "concurrency": 10,
    "https_verify_certificate": True,
    "https_sni": None,
    "headers": None,
    "healthy": {"interval": 0, "successes": 0, "http_statuses": [200, 302]},
    "unhealthy": {
        "interval": 0,
        "http_failures": 0,
        "tcp_failures": 0,
        "timeouts": 0,
        "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
    },
}
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")


class ConfigError(ValueError):
    """kong.yml uses something the local gateway does not reproduce (or is invalid)."""


@dataclasses.dataclass(frozen=True)
class Plugin:
    name: str
    config: dict[str, Any]
    where: str  # "global", "service NAME" or "route NAME", for messages and counter keys
    service: str | None = None
    route: str | None = None


@dataclasses.dataclass(frozen=True)
class Route:
    name: str
    service: str
    paths: tuple[str, ...]
    methods: frozenset[str] | None
    strip_path: bool
    protocols: tuple[str, ...]
    plugins: tuple[Plugin, ...]
    #: Kong reads the whole body before proxying when true (its default); the local gateway
    #: always streams, so it behaves as Kong does with ``request_buffering: false``
    request_buffering: bool = True


@dataclasses.dataclass(frozen=True)
class Service:
    name: str
    protocol: str
    host: str
    port: int
    retries: int
    connect_timeout: float  # seconds
    read_timeout: float
    write_timeout: float
    plugins: tuple[Plugin, ...]


@dataclasses.dataclass(frozen=True)
class Target:
    host: str
    port: int
    weight: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class ActiveCheck:
    http_path: str
    timeout: float
    healthy_interval: float
    successes: int
    healthy_statuses: frozenset[int]
    unhealthy_interval: float
    http_failures: int
    tcp_failures: int
    timeouts: int
    unhealthy_statuses: frozenset[int]


@dataclasses.dataclass(frozen=True)
class Upstream:
    name: str
    targets: tuple[Target, ...]
    active: ActiveCheck | None


@dataclasses.dataclass(frozen=True)
class Consumer:
    id: str
    username: str | None
    custom_id: str | None


@dataclasses.dataclass(frozen=True)
class Credential:
    key: str
    algorithm: str
    public_key: RSAPublicKey
    consumer: Consumer


@dataclasses.dataclass(frozen=True)
class GatewayConfig:
    services: dict[str, Service]
    routes: tuple[Route, ...]
    upstreams: dict[str, Upstream]
    credentials: dict[str, Credential]
    global_plugins: tuple[Plugin, ...]


def _fields(obj: Any, allowed: dict[str, Any], where: str) -> dict[str, Any]:
    """``obj`` merged over ``allowed`` defaults; an unknown field is an error."""
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unsupported field(s) {', '.join(unknown)}")
    merged = copy.deepcopy(allowed)
    merged.update({k: v for k, v in obj.items() if v is not None})
    return merged


def _unsupported_unless(value: Any, accepted: Any, where: str) -> None:
    if value != accepted and value not in (None, [], {}):
        raise ConfigError(f"{where}: value {value!r} is not supported by the local gateway")


def _plugin(raw: Any, where: str, *, service: str | None, route: str | None) -> Plugin:
    spec = _fields(
        raw,
        {
            "name": None,
            "config": None,
            "enabled": True,
            "protocols": None,
            "tags": None,
            "id": None,
            "instance_name": None,
        },
        f"plugin at {where}",
    )
    name = spec["name"]
    if name not in PLUGIN_DEFAULTS:
        raise ConfigError(f"plugin {name!r} at {where}: not supported by the local gateway")
    if spec["enabled"] is not True:
        raise ConfigError(f"plugin {name} at {where}: enabled: false is not supported")
    _unsupported_unless(spec["protocols"], ["grpc", "grpcs", "http", "https"], f"{name}.protocols")
    config = _fields(spec["config"], PLUGIN_DEFAULTS[name], f"plugin {name} at {where}: config")
    if name == "rate-limiting" and config["redis"] is not None:
        config["redis"] = _fields(config["redis"], REDIS_DEFAULTS, f"{name} at {where}: redis")
    return Plugin(name=name, config=config, where=where, service=service, route=route)


def _seconds(ms: Any, where: str) -> float:
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 1:
        raise ConfigError(f"{where}: expected milliseconds >= 1")
    return ms / 1000


def _route(raw: Any, service: str) -> Route:
    spec = _fields(
        raw,
        {
            "name": None,
            "paths": None,
            "methods": None,
            "strip_path": True,
            "protocols": ["http", "https"],
            "preserve_host": False,
            "plugins": [],
            "regex_priority": 0,
            "path_handling": "v0",
            "https_redirect_status_code": 426,
            "request_buffering": True,
            "response_buffering": True,
            "tags": None,
            "id": None,
            "hosts": None,
            "headers": None,
            "snis": None,
            "sources": None,
            "destinations": None,
        },
        f"route of service {service}",
    )
    name = spec["name"]
    if not name:
        raise ConfigError(f"a route of service {service} has no name")
    where = f"route {name}"
    for unsupported in ("hosts", "headers", "snis", "sources", "destinations"):
        _unsupported_unless(spec[unsupported], None, f"{where}.{unsupported}")
    _unsupported_unless(spec["preserve_host"], False, f"{where}.preserve_host")
    paths = tuple(spec["paths"] or ())
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(
                f"{where}: paths must be plain prefixes starting with /, got {path!r}"
            )
    protocols = tuple(spec["protocols"])
    if not set(protocols) <= {"http", "https"}:
        raise ConfigError(f"{where}: protocols {list(protocols)}: only http and https (Kong OSS)")
    if not paths and not spec["methods"]:
        raise ConfigError(f"{where}: needs paths or methods")
    methods = frozenset(m.upper() for m in spec["methods"]) if spec["methods"] else None
    plugins = tuple(_plugin(p, where, service=None, route=name) for p in spec["plugins"] or ())
    return Route(
        name,
        service,
        paths,
        methods,
        bool(spec["strip_path"]),
        protocols,
        plugins,
        request_buffering=bool(spec["request_buffering"]),
    )


def _service(raw: Any) -> tuple[Service, list[Route]]:
    spec = _fields(
        raw,
        {
            "name": None,
            "protocol": "http",
            "host": None,
            "port": 80,
            "path": None,
            "url": None,
            "retries": 5,
            "connect_timeout": 60000,
            "read_timeout": 60000,
            "write_timeout": 60000,
            "routes": [],
            "plugins": [],
            "tags": None,
            "id": None,
        },
        "service",
    )
    name = spec["name"]
    if not name:
        raise ConfigError("a service has no name")
    if spec["url"]:
        raise ConfigError(f"service {name}: give protocol/host/port rather than url")
    _unsupported_unless(spec["path"], "/", f"service {name}.path")
    if spec["protocol"] not in ("http", "https"):
        raise ConfigError(f"service {name}: protocol {spec['protocol']!r} is not supported")
    if not spec["host"]:
        raise ConfigError(f"service {name}: host is required")
    where = f"service {name}"
    service = Service(
        name=name,
        protocol=spec["protocol"],
        host=spec["host"],
        port=int(spec["port"]),
        retries=int(spec["retries"]),
        connect_timeout=_seconds(spec["connect_timeout"], f"{where}.connect_timeout"),
        read_timeout=_seconds(spec["read_timeout"], f"{where}.read_timeout"),
        write_timeout=_seconds(spec["write_timeout"], f"{where}.write_timeout"),
        plugins=tuple(_plugin(p, where, service=name, route=None) for p in spec["plugins"] or ()),
    )
    return service, [_route(r, name) for r in spec["routes"] or ()]


def _target(raw: Any, upstream: str) -> Target:
    spec = _fields(
        raw, {"target": None, "weight": 100, "tags": None, "id": None}, f"target of {upstream}"
    )
    host, sep, port = str(spec["target"] or "").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"upstream {upstream}: target {spec['target']!r} must be host:port")
    return Target(host, int(port), int(spec["weight"]))


def _active(raw: Any, upstream: str) -> ActiveCheck | None:
    allowed = {"active": None, "passive": None, "threshold": 0}
    checks = _fields(raw, allowed, f"{upstream}.healthchecks")
    passive = checks["passive"] or {}
    for state in ("healthy", "unhealthy"):
        for counter, value in (passive.get(state) or {}).items():
            if counter != "http_statuses" and value:
                raise ConfigError(f"upstream {upstream}: passive health checks are not supported")
    _unsupported_unless(checks["threshold"], 0, f"{upstream}.healthchecks.threshold")
    if checks["active"] is None:
        return None
    active = _fields(checks["active"], ACTIVE_DEFAULTS, f"{upstream}.healthchecks.active")
    if active["type"] != "http":
        raise ConfigError(f"upstream {upstream}: only type: http active checks are supported")
    _unsupported_unless(active["headers"], None, f"{upstream}.healthchecks.active.headers")
    healthy = _fields(active["healthy"], ACTIVE_DEFAULTS["healthy"], f"{upstream} healthy")
    unhealthy = _fields(active["unhealthy"], ACTIVE_DEFAULTS["unhealthy"], f"{upstream} unhealthy")
    if not (healthy["interval"] or unhealthy["interval"]):
        return None  # every interval 0: Kong runs no active check
    return ActiveCheck(
        http_path=active["http_path"],
        timeout=float(active["timeout"]),
        healthy_interval=float(healthy["interval"]),
        successes=int(healthy["successes"]),
        healthy_statuses=frozenset(healthy["http_statuses"]),
        unhealthy_interval=float(unhealthy["interval"]),
        http_failures=int(unhealthy["http_failures"]),
        tcp_failures=int(unhealthy["tcp_failures"]),
        timeouts=int(unhealthy["timeouts"]),
        unhealthy_statuses=frozenset(unhealthy["http_statuses"]),
    )


def _upstream(raw: Any) -> Upstream:
    spec = _fields(
        raw,
        {
            "name": None,
            "algorithm": "round-robin",
            "slots": 10000,
            "healthchecks": None,
            "targets": [],
            "tags": None,
            "id": None,
            "hash_on": "none",
            "hash_fallback": "none",
            "host_header": None,
        },
        "upstream",
    )
    name = spec["name"]
    if spec["algorithm"] != "round-robin":
        raise ConfigError(f"upstream {name}: only algorithm round-robin is supported")
    _unsupported_unless(spec["hash_on"], "none", f"upstream {name}.hash_on")
    _unsupported_unless(spec["hash_fallback"], "none", f"upstream {name}.hash_fallback")
    _unsupported_unless(spec["host_header"], None, f"upstream {name}.host_header")
    targets = tuple(_target(t, name) for t in spec["targets"] or ())
    return Upstream(name, targets, _active(spec["healthchecks"], name))


def _consumer(raw: Any) -> list[Credential]:
    spec = _fields(
        raw,
        {
            "username": None,
            "custom_id": None,
            "id": None,
            "jwt_secrets": [],
            "tags": None,
            "plugins": None,
        },
        "consumer",
    )
    if not (spec["username"] or spec["custom_id"]):
        raise ConfigError("a consumer needs a username or a custom_id")
    _unsupported_unless(spec["plugins"], None, f"consumer {spec['username']}.plugins")
    consumer_id = spec["id"] or str(uuid.uuid5(uuid.NAMESPACE_URL, f"consumer:{spec['username']}"))
    consumer = Consumer(consumer_id, spec["username"], spec["custom_id"])
    credentials = []
    for secret in spec["jwt_secrets"] or ():
        cred = _fields(
            secret,
            {
                "key": None,
                "algorithm": "HS256",
                "secret": None,
                "rsa_public_key": None,
                "id": None,
                "tags": None,
            },
            f"jwt_secret of consumer {consumer.username}",
        )
        where = f"jwt_secret {cred['key']!r}"
        if not cred["key"]:
            raise ConfigError(f"{where}: give every jwt_secret an explicit key (the kid)")
        if cred["algorithm"] not in RSA_ALGORITHMS:
            raise ConfigError(f"{where}: algorithm {cred['algorithm']} is not supported locally")
        try:
            key = serialization.load_pem_public_key(str(cred["rsa_public_key"]).encode())
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: rsa_public_key: invalid key") from None
        if not isinstance(key, RSAPublicKey):
            raise ConfigError(f"{where}: rsa_public_key is not an RSA key")
        credentials.append(Credential(str(cred["key"]), cred["algorithm"], key, consumer))
    return credentials


def _unrendered(node: Any, where: str = "kong.yml") -> None:
    if isinstance(node, str) and "${" in node:
        raise ConfigError(f"{where}: unrendered placeholder; run `svc-gateway render` first")
    if isinstance(node, dict):
        for key, value in node.items():
            _unrendered(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _unrendered(value, f"{where}.{i}")


def parse(document: Any) -> GatewayConfig:
    """Build the gateway's model of a rendered kong.yml document."""
    top = _fields(
        document,
        {
            "_format_version": None,
            "_comment": None,
            "_transform": True,
            "services": [],
            "upstreams": [],
            "consumers": [],
            "plugins": [],
        },
        "kong.yml",
    )
    if top["_format_version"] != "3.0":
        raise ConfigError('kong.yml: _format_version must be "3.0"')
    _unrendered(document)
    services: dict[str, Service] = {}
    routes: list[Route] = []
    for raw in top["services"] or ():
        service, service_routes = _service(raw)
        if service.name in services:
            raise ConfigError(f"service {service.name}: duplicate name")
        services[service.name] = service
        routes.extend(service_routes)
    names = [r.name for r in routes]
    if len(names) != len(set(names)):
        raise ConfigError("route names must be unique")
    upstreams = {u.name: u for u in map(_upstream, top["upstreams"] or ())}
    credentials: dict[str, Credential] = {}
    for raw in top["consumers"] or ():
        for cred in _consumer(raw):
            if cred.key in credentials:
                raise ConfigError(f"jwt_secret key {cred.key!r}: keys must be unique")
            credentials[cred.key] = cred
    global_plugins = tuple(
        _plugin(p, "global", service=None, route=None) for p in top["plugins"] or ()
    )
    for scope in [
        global_plugins,
        *(s.plugins for s in services.values()),
        *(r.plugins for r in routes),
    ]:
        seen = [p.name for p in scope]
        if len(seen) != len(set(seen)):
            raise ConfigError(f"{scope[0].where}: a plugin is configured twice at the same scope")
    return GatewayConfig(services, tuple(routes), upstreams, credentials, global_plugins)


def load(path: Path) -> GatewayConfig:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse(document)
