"""svc-dev's pieces that need no running stack (the stack itself runs in tests/e2e)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from svc_core import Service
from svc_core.auth import key_id, load_public_keys
from svc_devstack.stack import StackOptions, ensure_dev_keys, parse_options, services

ROOT = Path(__file__).resolve().parents[2]


def test_every_service_package_registers_a_manifest_the_stack_runs() -> None:
    import tomllib

    registered = services()
    packages = {
        path.parent.name
        for path in (ROOT / "packages").glob("*/pyproject.toml")
        if tomllib.loads(path.read_text())["project"].get("entry-points", {}).get("svc.services")
    }
    assert set(registered) == packages
    for name, service in registered.items():
        assert isinstance(service, Service)
        assert service.name == name
    assert sorted(s.port for s in registered.values()) == [s.port for s in registered.values()]
    assert [n for n, s in registered.items() if s.signs_tokens] == ["customer"]


def test_a_throwaway_service_is_in_the_stack_without_editing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SVC_EXTRA_SERVICES", "tests.devstack.throwaway:service")
    registered = services()
    assert registered["throwaway"].port == 3099
    options = parse_options(["--port", "throwaway=4099"], {})
    assert options.ports["throwaway"] == [4099]


def test_a_second_service_on_a_taken_port_is_refused_with_both_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SVC_EXTRA_SERVICES", "tests.devstack.throwaway:clash")
    with pytest.raises(ValueError, match=r"port 3003 is taken twice: by svc_order.*throwaway"):
        services()


def test_unknown_services_in_the_options_are_refused() -> None:
    from svc_devstack.stack import Stack

    with pytest.raises(ValueError, match="no such service: nosuch"):
        Stack(StackOptions(ports={"nosuch": [1]}))


def test_dev_keys_are_generated_once_and_private_stays_private(tmp_path: Path) -> None:
    private, public = ensure_dev_keys(tmp_path / "keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    (pub,) = load_public_keys(public.read_text())
    assert key_id(pub) == key_id(key.public_key())  # type: ignore[arg-type]
    again = ensure_dev_keys(tmp_path / "keys")
    assert again == (private, public)
    assert key_id(load_public_keys(public.read_text())[0]) == key_id(pub)


def test_ports_and_urls_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    options = parse_options(
        ["--port", "order=4003,4013", "--url", "cache=http://cache.internal:3001",
         "--gateway-port", "9000"],
        {"PAYMENT_PORTS": "4004"},
    )  # fmt: skip
    assert options.ports["order"] == [4003, 4013]
    assert options.ports["payment"] == [4004]
    assert "customer" not in options.ports  # one instance on its manifest's port
    assert options.urls == {"cache": "http://cache.internal:3001"}
    assert options.gateway_port == 9000
    with pytest.raises(SystemExit):
        parse_options(["--port", "nosuch=1"], {})


def _rendered_config(tmp_path: Path, services_: dict) -> object:
    from svc_core.testing import KeyPair
    from svc_gateway.config import load
    from svc_gateway.render import render_file

    env = {"JWT_PUBLIC_KEYS_FILE": str(tmp_path / "pub.pem")}
    (tmp_path / "pub.pem").write_text(KeyPair.generate().public_pem)
    env |= {f"{name.upper()}_TARGETS": f"127.0.0.1:{s.port}" for name, s in services_.items()}
    out = tmp_path / "kong.yml"
    render_file(ROOT / "deploy" / "kong" / "kong.yml", out, env)
    return load(out)


def test_kong_yml_routes_every_registered_service(tmp_path: Path) -> None:
    from svc_devstack.consistency import routing_problems

    registered = services()
    assert routing_problems(_rendered_config(tmp_path, registered), registered) == []


def test_a_service_missing_from_kong_yml_is_named_with_what_to_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from svc_devstack.consistency import routing_problems

    config = _rendered_config(tmp_path, services())
    monkeypatch.setenv("SVC_EXTRA_SERVICES", "tests.devstack.throwaway:service")
    [problem] = routing_problems(config, services())
    assert "no service for 'throwaway'" in problem
    assert "upstream throwaway-upstream" in problem


def test_a_route_to_a_missing_upstream_is_named(tmp_path: Path) -> None:
    import dataclasses

    from svc_devstack.consistency import routing_problems

    registered = services()
    config = _rendered_config(tmp_path, registered)
    broken = dataclasses.replace(
        config, upstreams={k: v for k, v in config.upstreams.items() if k != "order-upstream"}
    )
    problems = routing_problems(broken, registered)
    assert problems == [
        "kong.yml: service 'order' sends to host 'order-upstream', which is no upstream: "
        "add an upstream named order-upstream with targets ${ORDER_TARGETS}"
    ]
