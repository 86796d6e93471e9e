"""The service's own settings and its composition."""

from __future__ import annotations

import pytest

from svc_core import SettingsError
from svc_order import OrderSettings, create_app, service


def test_defaults():
    settings = OrderSettings.from_env({})
    assert (service.name, service.listen_port(settings)) == ("order", 3003)
    assert (settings.events_retry_after, settings.events_max_attempts) == (1.0, 5)
    assert settings.events_consumer == ""


def test_event_settings_come_from_the_environment():
    settings = OrderSettings.from_env(
        {
            "EVENTS_RETRY_AFTER": "0.25",
            "EVENTS_MAX_ATTEMPTS": "9",
            "EVENTS_CONSUMER": "order-a",
        }
    )
    assert (settings.events_retry_after, settings.events_max_attempts) == (0.25, 9)
    assert settings.events_consumer == "order-a"


def test_a_bad_value_names_its_variable():
    with pytest.raises(SettingsError, match="EVENTS_MAX_ATTEMPTS"):
        OrderSettings.from_env({"EVENTS_MAX_ATTEMPTS": "many"})


def test_create_app_reads_the_environment_by_default(monkeypatch):
    monkeypatch.setenv("EVENTS_RETRY_AFTER", "0.5")
    from svc_core import keys

    app = create_app()
    assert app[keys.SETTINGS].events_retry_after == 0.5


async def test_ready_names_mongodb_and_redis(client):
    resp = await client.get("/ready")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "checks": {"mongodb": "ok", "redis": "ok"}}
