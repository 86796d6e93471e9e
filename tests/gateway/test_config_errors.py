"""Whatever the local gateway cannot reproduce is a startup error, never silently ignored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from svc_gateway.config import ConfigError, parse
from svc_gateway.gateway import Gateway
from tests.gateway.conftest import SERVICES, TEMPLATE


@pytest.fixture
def doc(render: Callable[..., Path]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(render(dict.fromkeys(SERVICES, "h:1")).read_text())
    return loaded


def plugin(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in doc["plugins"] if p["name"] == name)
    return found


CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("unknown plugin", lambda d: d["plugins"].append({"name": "acl"}), "'acl'"),
    ("unknown top-level key", lambda d: d.update(routes=[]), "unsupported field"),
    (
        "unknown plugin field",
        lambda d: plugin(d, "cors")["config"].update(allow_origin_absent=True),
        "allow_origin_absent",
    ),
    (
        "cluster policy",
        lambda d: plugin(d, "rate-limiting")["config"].update(policy="cluster"),
        "cluster",
    ),
    (
        "unknown limit_by",
        lambda d: plugin(d, "rate-limiting")["config"].update(limit_by="banana"),
        "banana",
    ),
    (
        "regex origin",
        lambda d: plugin(d, "cors")["config"].update(origins=["https://.*\\.example"]),
        "regex origin",
    ),
    (
        "tracker generator",
        lambda d: plugin(d, "correlation-id")["config"].update(generator="tracker"),
        "tracker",
    ),
    (
        "ws protocol",
        lambda d: d["services"][2]["routes"][0].update(protocols=["ws"]),
        "only http and https",
    ),
    ("route hosts", lambda d: d["services"][2]["routes"][0].update(hosts=["a"]), "hosts"),
    ("algorithm", lambda d: d["upstreams"][0].update(algorithm="latency"), "round-robin"),
    (
        "passive checks",
        lambda d: d["upstreams"][0]["healthchecks"].update(
            passive={"unhealthy": {"http_failures": 3}}
        ),
        "passive",
    ),
    (
        "HS256 credential",
        lambda d: d["consumers"][0]["jwt_secrets"][0].update(algorithm="HS256"),
        "HS256",
    ),
    (
        "bad public key",
        lambda d: d["consumers"][0]["jwt_secrets"][0].update(rsa_public_key="nope"),
        "invalid key",
    ),
    ("format version", lambda d: d.update(_format_version="2.1"), "_format_version"),
    (
        "disabled plugin",
        lambda d: plugin(d, "prometheus").update(enabled=False),
        "enabled: false",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_unsupported_configuration_is_a_startup_error(
    doc: dict[str, Any], mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    mutate(doc)
    with pytest.raises(ConfigError, match=message):
        Gateway(parse(doc))


def test_an_unrendered_template_is_refused() -> None:
    with pytest.raises(ConfigError, match="unrendered placeholder"):
        parse(yaml.safe_load(TEMPLATE.read_text()))
