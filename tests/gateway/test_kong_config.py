"""deploy/kong/kong.yml, rendered, checked three ways:

1. decK 1.4 (``deck validate -s FILE``, offline, shared/kong.md §5): entity shapes, types,
   references. With CI=true a missing deck fails; elsewhere the test skips and says why.
2. The project's own checks (svc_gateway.checks) for what decK skips: protocols, no cluster
   policy, exp verified, RS256 keys present, unique credential keys, rate-limit identities.
3. The contract: every api.md route of the implemented services is routed, and exactly the
   public ones are free of jwt (the list lives here: shared/api.md is not in the repository).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from svc_core.testing import KeyPair
from svc_gateway.checks import config_problems, effective_plugins, problems
from svc_gateway.config import load, parse
from svc_gateway.render import RenderError, render_text
from tests.gateway.conftest import SERVICES, TEMPLATE, in_ci
from tests.gateway.test_cors_and_correlation import ALLOWED, EXPOSED, METHODS

# api.md, services implemented so far (chat and files come later: add their rows here).
PUBLIC = [
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("GET", "/auth/jwks.json"),
]
PROTECTED = [
    ("POST", "/auth/logout"),
    ("GET", "/customers/me"),
    ("PATCH", "/customers/me"),
    ("POST", "/customers/me/password"),
    ("POST", "/orders"),
    ("GET", "/orders"),
    ("GET", "/orders/o1"),
    ("PATCH", "/orders/o1"),
    ("POST", "/orders/o1/cancel"),
    ("DELETE", "/orders/o1"),
    ("POST", "/payments"),
    ("GET", "/payments"),
    ("GET", "/payments/p1"),
    ("POST", "/payments/p1/refund"),
    ("PUT", "/cache/k1"),
    ("GET", "/cache/k1"),
    ("DELETE", "/cache/k1"),
    ("POST", "/cache/k1/incr"),
    ("POST", "/files"),
    ("GET", "/files"),
    ("GET", "/files/f1"),
    ("GET", "/files/f1/content"),
    ("HEAD", "/files/f1/content"),
    ("DELETE", "/files/f1"),
    ("OPTIONS", "/files/uploads"),
    ("POST", "/files/uploads"),
    ("HEAD", "/files/uploads/u1"),
    ("PATCH", "/files/uploads/u1"),
    ("DELETE", "/files/uploads/u1"),
    ("POST", "/chat/rooms"),
    ("GET", "/chat/rooms"),
    ("GET", "/chat/rooms/r1/messages"),
    ("POST", "/chat/rooms/r1/messages"),
]
# Protected too, and the one route that also takes the token as ?jwt= (api.md "auth").
WEBSOCKET = ("GET", "/chat/ws")
SERVICE_OF = {"/auth": "customer", "/customers": "customer", "/orders": "order",
              "/payments": "payment", "/cache": "cache", "/files": "files",
              "/chat": "chat"}  # fmt: skip
FILE_LIMIT_MIB = 50  # the file service's default FILES_MAX_SIZE


@pytest.fixture
def rendered(render: Callable[..., Path]) -> Path:
    return render({s: f"{s.lower()}:80" for s in SERVICES})


def test_decK_validates_the_rendered_file(rendered: Path) -> None:
    deck = shutil.which("deck")
    if deck is None:
        message = (
            "decK is not installed (Debian: apt-get install deck) - the shape check did not run"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [deck, "validate", "-s", str(rendered)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_decK_rejects_a_broken_file(rendered: Path, tmp_path: Path) -> None:
    """The validator really looks: a string strip_path is refused (so a pass means something)."""
    deck = shutil.which("deck")
    if deck is None:
        if in_ci():
            pytest.fail("decK is not installed")
        pytest.skip("decK is not installed (Debian: apt-get install deck)")
    broken = tmp_path / "broken.yml"
    broken.write_text(rendered.read_text().replace("strip_path: false", "strip_path: 'no'"))
    result = subprocess.run(
        [deck, "validate", "-s", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "strip_path: Invalid type" in result.stdout + result.stderr


def test_project_checks_pass(rendered: Path) -> None:
    assert problems(rendered) == []


def test_rendered_file_shape(rendered: Path, test_keys: KeyPair) -> None:
    document = yaml.safe_load(rendered.read_text())
    assert document["_format_version"] == "3.0"
    assert "_transform" not in document  # decK 1.4 rejects it
    assert "PRIVATE KEY" not in rendered.read_text()
    (consumer,) = document["consumers"]
    (secret,) = consumer["jwt_secrets"]
    assert secret["key"] == test_keys.kid
    assert secret["algorithm"] == "RS256"
    assert secret["rsa_public_key"] == test_keys.public_pem
    assert secret["secret"]  # decK 1.4 quirk: required even for RS256
    for service in document["services"]:
        for route in service["routes"]:
            assert route["strip_path"] is False
            assert route["protocols"] == ["http", "https"]
    for upstream in document["upstreams"]:
        active = upstream["healthchecks"]["active"]
        assert active["http_path"] == "/health"
        assert active["healthy"]["interval"] > 0
        assert active["unhealthy"]["interval"] > 0


def test_every_contract_route_is_routed_and_only_public_ones_skip_jwt(rendered: Path) -> None:
    from svc_gateway.router import Router

    config = load(rendered)
    router = Router(config.routes)
    for method, path in [*PUBLIC, *PROTECTED, WEBSOCKET]:
        route = router.match(method, path)
        assert route is not None, f"{method} {path} is not routed"
        service = config.services[route.service]
        assert service.host == f"{SERVICE_OF['/' + path.split('/')[1]]}-upstream"
        plugins = effective_plugins(config, route)
        limit = plugins["rate-limiting"].config
        assert limit["minute"] == 100
        assert limit["policy"] == "redis"
        if (method, path) in PUBLIC:
            assert "jwt" not in plugins, f"{method} {path} must be public"
            assert limit["limit_by"] == "ip"
            assert plugins["rate-limiting"].route == route.name  # a route-level instance
        else:
            jwt = plugins["jwt"].config
            assert jwt["key_claim_name"] == "kid"
            assert jwt["claims_to_verify"] == ["exp"]
            assert jwt["uri_param_names"] == (["jwt"] if (method, path) == WEBSOCKET else [])
            assert limit["limit_by"] == "header"
            assert limit["header_name"] == "Authorization"
        size = plugins["request-size-limiting"].config
        if path.startswith("/files"):
            # above the file service's own limit, which answers its 413 as a problem
            assert size["allowed_payload_size"] > FILE_LIMIT_MIB
            assert size["size_unit"] == "megabytes"
            assert plugins["request-size-limiting"].route == route.name
            assert route.request_buffering is False  # uploads stream to the service
        else:
            assert size["allowed_payload_size"] == 1
            assert route.request_buffering is True
        assert plugins["correlation-id"].config["header_name"] == "X-Request-ID"
        assert plugins["correlation-id"].config["echo_downstream"] is True
        assert "prometheus" in plugins
        cors = plugins["cors"].config
        assert cors["origins"] == ["http://localhost:3000"]
        assert cors["methods"] == METHODS.split(",")
        assert cors["headers"] == ALLOWED.split(",")
        assert cors["exposed_headers"] == EXPOSED.split(",")
        assert cors["credentials"] is False
        assert cors["max_age"] == 3600


def test_public_method_variants_need_a_token(rendered: Path) -> None:
    """Only the listed method makes a path public: GET /auth/login is a protected route."""
    from svc_gateway.router import Router

    config = load(rendered)
    router = Router(config.routes)
    for method, path in [("GET", "/auth/login"), ("POST", "/auth/jwks.json")]:
        route = router.match(method, path)
        assert route is not None
        assert "jwt" in effective_plugins(config, route)


def global_plugin(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in doc["plugins"] if p["name"] == name)
    return found


def document(rendered: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(rendered.read_text())
    return loaded


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: global_plugin(d, "rate-limiting")["config"].update(policy="cluster"),
            "policy must be local",
        ),
        (
            lambda d: global_plugin(d, "rate-limiting")["config"].update(limit_by="consumer"),
            "never limit_by consumer",
        ),
        (
            lambda d: d["services"][1]["plugins"][0]["config"].update(claims_to_verify=[]),
            "claims_to_verify must contain exp",
        ),
        (
            lambda d: d["services"][0]["routes"][0]["plugins"][0]["config"].update(
                limit_by="header", header_name="Authorization"
            ),
            "public, so rate-limited by ip",
        ),
    ],
)
def test_project_checks_catch_what_decK_lets_through(
    rendered: Path, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = document(rendered)
    mutate(doc)
    found = config_problems(parse(doc))
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["services"][2]["routes"][0].update(protocols=["ws"]),
            "protocols",
        ),
        (
            lambda d: d["consumers"][0]["jwt_secrets"][0].pop("rsa_public_key"),
            "needs rsa_public_key",
        ),
        (
            lambda d: d["consumers"][0]["jwt_secrets"].append(
                dict(d["consumers"][0]["jwt_secrets"][0])
            ),
            "keys must be unique",
        ),
    ],
)
def test_raw_checks(
    rendered: Path, tmp_path: Path, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = document(rendered)
    mutate(doc)
    path = tmp_path / "mutated.yml"
    path.write_text(yaml.safe_dump(doc))
    found = problems(path)
    assert any(expected in problem for problem in found), found


def test_render_needs_a_public_key_and_refuses_private_ones(test_keys: KeyPair) -> None:
    template = TEMPLATE.read_text()
    with pytest.raises(RenderError, match="JWT_KID: no public key"):
        render_text(template, {})
    with pytest.raises(RenderError, match="private key"):
        render_text(template, {"JWT_PUBLIC_KEYS": test_keys.private_pem})


def test_render_expands_list_variables(test_keys: KeyPair, other_keys: KeyPair) -> None:
    """One jwt credential per public key; one target per comma-separated address; scalars
    made of one placeholder become integers."""
    text = render_text(
        TEMPLATE.read_text(),
        {
            "JWT_PUBLIC_KEYS": test_keys.public_pem + other_keys.public_pem,
            "ORDER_TARGETS": "order-1:3003, order-2:3003",
            "GATEWAY_CORS_ORIGINS": "https://a.example,https://b.example",
            "RATE_LIMIT_REDIS_PORT": "6380",
        },
    )
    doc = yaml.safe_load(text)
    keys = [s["key"] for s in doc["consumers"][0]["jwt_secrets"]]
    assert keys == [test_keys.kid, other_keys.kid]
    order = next(u for u in doc["upstreams"] if u["name"] == "order-upstream")
    assert [t["target"] for t in order["targets"]] == ["order-1:3003", "order-2:3003"]
    cors = next(p for p in doc["plugins"] if p["name"] == "cors")
    assert cors["config"]["origins"] == ["https://a.example", "https://b.example"]
    limit = next(p for p in doc["plugins"] if p["name"] == "rate-limiting")
    assert limit["config"]["redis"]["port"] == 6380
    customer = next(u for u in doc["upstreams"] if u["name"] == "customer-upstream")
    assert customer["targets"] == [{"target": "127.0.0.1:3002"}]  # the template's default
