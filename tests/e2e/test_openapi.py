"""Every service's /openapi.json is a valid OpenAPI 3.1 document that lists its api.md routes."""

from __future__ import annotations

import importlib

import pytest
from openapi_spec_validator import validate

from svc_core import keys

SERVICES = {
    "svc_customer.app": {
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/jwks.json",
        "/customers/me",
        "/customers/me/password",
    },
    "svc_order.app": {"/orders", "/orders/{order_id}", "/orders/{order_id}/cancel"},
    "svc_payment.app": {"/payments", "/payments/{id}", "/payments/{id}/refund"},
    "svc_cache.app": {"/cache/{key}", "/cache/{key}/incr"},
}


@pytest.mark.parametrize("module", list(SERVICES))
def test_openapi_is_valid_and_complete(module):
    app = importlib.import_module(module).create_app()
    spec = app[keys.OPENAPI]
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert set(spec["paths"]) == SERVICES[module]
