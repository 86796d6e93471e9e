"""svc-dev's pieces that need no running stack (the stack itself runs in tests/e2e)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from svc_core.auth import key_id, load_public_keys
from svc_gateway.devstack import SERVICES, ensure_dev_keys, parse_options, settings_class


def test_each_service_exposes_create_app_with_its_settings_class() -> None:
    import importlib

    for name, port in SERVICES.items():
        module = importlib.import_module(f"svc_{name}.app")
        cls = settings_class(module.create_app)
        assert cls.service_name == name
        assert cls.default_port == port


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
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    options = parse_options(
        ["--port", "order=4003,4013", "--url", "cache=http://cache.internal:3001",
         "--gateway-port", "9000"],
        {"PAYMENT_PORTS": "4004"},
    )  # fmt: skip
    assert options.ports["order"] == [4003, 4013]
    assert options.ports["payment"] == [4004]
    assert options.ports["customer"] == [3002]
    assert options.urls == {"cache": "http://cache.internal:3001"}
    assert options.gateway_port == 9000
    with pytest.raises(SystemExit):
        parse_options(["--port", "nosuch=1"], {})
