"""Settings, the OpenAPI document and readiness of the payment app."""

from __future__ import annotations

from typing import Any

import pytest

from svc_core import SettingsError
from svc_payment import PaymentSettings, service

PRODUCTION = {
    "ENVIRONMENT": "production",
    "MONGO_URL": "mongodb://db:27017",
    "REDIS_URL": "redis://redis:6379/0",
}


def test_settings_from_the_environment() -> None:
    settings = PaymentSettings.from_env(
        {
            "ORDER_SERVICE_URL": "http://orders:3003",
            "IDEMPOTENCY_WAIT_SECONDS": "2.5",
            "OUTBOX_RELAY": "false",
        }
    )
    assert settings.order_service_url == "http://orders:3003"
    assert settings.idempotency_wait_seconds == 2.5
    assert settings.outbox_relay is False
    assert service.listen_port(settings) == 3004
    assert settings.idempotency_ttl_seconds == 86400
    assert settings.describe()["idempotency_secret"] == "***"


def test_production_needs_a_real_idempotency_secret() -> None:
    with pytest.raises(SettingsError, match="IDEMPOTENCY_SECRET"):
        PaymentSettings.from_env(PRODUCTION)
    ok = PaymentSettings.from_env({**PRODUCTION, "IDEMPOTENCY_SECRET": "s3cr3t-from-vault"})
    assert ok.idempotency_secret == "s3cr3t-from-vault"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PAYMENT_PROVIDER", "stripe-ish"),
        ("IDEMPOTENCY_TTL_SECONDS", "0"),
        ("IDEMPOTENCY_WAIT_SECONDS", "-1"),
        ("OUTBOX_POLL_SECONDS", "0"),
    ],
)
def test_bad_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        PaymentSettings.from_env({variable: value})


async def test_openapi_and_ready(client: Any) -> None:
    spec = await (await client.get("/openapi.json")).json()
    assert {"/payments", "/payments/{id}", "/payments/{id}/refund"} <= set(spec["paths"])
    ready = await client.get("/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"mongodb": "ok", "redis": "ok"}
