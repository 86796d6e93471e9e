"""The project's own checks on a rendered kong.yml: what decK 1.4 does not look at.

decK 1.4 validates entity shapes only (shared/kong.md §5): not plugin config, not enum values,
not whether an RS256 credential has a key. These checks cover the rules this project relies on;
``svc-gateway check FILE`` runs them and the gateway tests run them on the real template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from svc_gateway.config import ConfigError, GatewayConfig, Plugin, Route, parse


def effective_plugins(config: GatewayConfig, route: Route) -> dict[str, Plugin]:
    """The plugin instance of each name that runs on ``route`` (route > service > global)."""
    chosen: dict[str, Plugin] = {}
    service = config.services[route.service]
    for scope in (config.global_plugins, service.plugins, route.plugins):
        for plugin in scope:
            chosen[plugin.name] = plugin
    return chosen


def _raw_problems(document: Any) -> list[str]:
    found: list[str] = []
    text = yaml.safe_dump(document)
    if "PRIVATE KEY" in text:
        found.append("a private key is in the file")
    for service in document.get("services") or ():
        for route in service.get("routes") or ():
            protocols = route.get("protocols") or ["http", "https"]
            if not set(protocols) <= {"http", "https"}:
                found.append(f"route {route.get('name')}: protocols {protocols} ⊄ {{http, https}}")
            for path in route.get("paths") or ():
                if any(c in path for c in "\\^$*+?()[]{}|") and not path.startswith("~"):
                    found.append(f"route {route.get('name')}: regex path {path!r} needs a ~")
    for consumer in document.get("consumers") or ():
        for secret in consumer.get("jwt_secrets") or ():
            alg = str(secret.get("algorithm", "HS256"))
            if alg[:2] in ("RS", "PS", "Ed") and not secret.get("rsa_public_key"):
                found.append(f"jwt_secret {secret.get('key')}: {alg} needs rsa_public_key")
    return found


def config_problems(config: GatewayConfig) -> list[str]:
    found: list[str] = []
    plugins = [*config.global_plugins]
    for service in config.services.values():
        plugins += service.plugins
    for route in config.routes:
        plugins += route.plugins
    for plugin in plugins:
        if plugin.name == "rate-limiting":
            if plugin.config["policy"] not in ("local", "redis"):
                found.append(f"rate-limiting at {plugin.where}: policy must be local or redis")
            if plugin.config["limit_by"] == "consumer":
                found.append(
                    f"rate-limiting at {plugin.where}: never limit_by consumer "
                    "(every customer is the same Kong consumer)"
                )
        if plugin.name == "jwt":
            if "exp" not in (plugin.config["claims_to_verify"] or ()):
                found.append(f"jwt at {plugin.where}: claims_to_verify must contain exp")
            if plugin.config["key_claim_name"] != "kid":
                found.append(f"jwt at {plugin.where}: key_claim_name must be kid")
    canonical = [p for p in config.global_plugins if p.name == "pre-function"]
    if not canonical:
        found.append(
            "no global pre-function: Authorization spellings would each get a rate-limit budget"
        )
    for route in config.routes:
        effective = effective_plugins(config, route)
        if canonical and effective.get("pre-function") is not canonical[0]:
            found.append(f"route {route.name}: the global pre-function is overridden")
        limit = effective.get("rate-limiting")
        if limit is None:
            found.append(f"route {route.name}: not rate limited")
            continue
        by = limit.config["limit_by"]
        if "jwt" in effective:
            if by != "header" or str(limit.config["header_name"]).lower() != "authorization":
                found.append(f"route {route.name}: protected, so limit_by header Authorization")
        elif by != "ip":
            found.append(f"route {route.name}: public, so rate-limited by ip (got {by})")
    if not config.credentials:
        found.append("no jwt credential: give at least one public key")
    return found


def problems(path: Path) -> list[str]:
    """Every problem found in a rendered kong.yml (empty when it passes)."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        return ["not a YAML mapping"]
    found = _raw_problems(document)
    try:
        config = parse(document)
    except ConfigError as exc:
        return [*found, f"local gateway refuses it: {exc}"]
    return found + config_problems(config)
