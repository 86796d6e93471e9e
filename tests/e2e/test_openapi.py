"""Every registered service's /openapi.json is a valid OpenAPI 3.1 document that lists exactly its
declared routes, and those are exactly the routes api.md gives the service (by its port)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from svc_core import discover, keys

ROOT = Path(__file__).resolve().parents[2]
_SECTION = re.compile(r"^## .*\(port (\d+)\)", re.M)
_ROUTE = re.compile(r"^\| `(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/[^` ]*)`", re.M)
_PARAM = re.compile(r"\{[^}]+\}")


def contract_routes() -> dict[int, set[tuple[str, str]]]:
    """port -> {(method, path with {} for each parameter)} from docs/api.md's tables."""
    text = (ROOT / "docs" / "api.md").read_text()
    sections = list(_SECTION.finditer(text))
    routes: dict[int, set[tuple[str, str]]] = {}
    for i, section in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        found = _ROUTE.findall(text, section.end(), end)
        routes[int(section.group(1))] = {(m, _PARAM.sub("{}", p)) for m, p in found}
    return routes


def declared(service) -> set[tuple[str, str]]:
    return {(spec.method, _PARAM.sub("{}", spec.path)) for spec in service.routes}


@pytest.mark.parametrize("name", list(discover()))
def test_openapi_is_valid_and_lists_the_declared_routes(name):
    service = discover()[name]
    spec = service.create_app(service.load_settings({}))[keys.OPENAPI]
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == f"{name.capitalize()} service"
    assert set(spec["paths"]) == {route.path for route in service.routes}


@pytest.mark.parametrize("name", list(discover()))
def test_the_declared_routes_are_the_contracts(name):
    service = discover()[name]
    contract = contract_routes().get(service.port)
    if contract is None:
        pytest.skip(f"api.md has no section for port {service.port}")
    assert declared(service) == contract


def test_a_throwaway_service_is_checked_without_editing_this_test(monkeypatch):
    monkeypatch.setenv("SVC_EXTRA_SERVICES", "tests.devstack.throwaway:service")
    assert "throwaway" in discover()
    test_openapi_is_valid_and_lists_the_declared_routes("throwaway")
