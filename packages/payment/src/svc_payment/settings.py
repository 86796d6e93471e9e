"""The payment service's settings: the chassis' for MongoDB, auth and events (see svc_core's
README), and its own below."""

from __future__ import annotations

from svc_core import (
    AuditSettings,
    AuthSettings,
    EventsSettings,
    MongoSettings,
    SettingsError,
    env,
)
from svc_payment.providers import PROVIDERS


class PaymentSettings(MongoSettings, AuthSettings, EventsSettings, AuditSettings):
    order_service_url: str = env(
        "ORDER_SERVICE_URL", "http://127.0.0.1:3003", help="base URL of the order service"
    )
    payment_provider: str = env(
        "PAYMENT_PROVIDER", "sandbox", help="provider name (providers.PROVIDERS): sandbox"
    )
    idempotency_secret: str = env(
        "IDEMPOTENCY_SECRET",
        "dev-only-change-me",
        secret=True,
        help="HMAC key for request fingerprints of Idempotency-Key requests",
    )
    idempotency_ttl_seconds: int = env(
        "IDEMPOTENCY_TTL_SECONDS", 86400, help="how long an Idempotency-Key is kept"
    )
    idempotency_wait_seconds: float = env(
        "IDEMPOTENCY_WAIT_SECONDS",
        10.0,
        help="how long a duplicate waits for the first request before 409 idempotency_in_progress",
    )
    outbox_relay: bool = env(
        "OUTBOX_RELAY", True, help="publish the outbox from this instance (off: store only)"
    )
    outbox_poll_seconds: float = env(
        "OUTBOX_POLL_SECONDS", 0.2, help="how often the relay looks for unpublished events"
    )

    def check(self) -> None:
        super().check()
        if self.payment_provider not in PROVIDERS:
            raise SettingsError(f"PAYMENT_PROVIDER: one of {', '.join(sorted(PROVIDERS))}")
        if self.idempotency_ttl_seconds < 1:
            raise SettingsError("IDEMPOTENCY_TTL_SECONDS: must be at least 1")
        if self.idempotency_wait_seconds < 0:
            raise SettingsError("IDEMPOTENCY_WAIT_SECONDS: must not be negative")
        if self.outbox_poll_seconds <= 0:
            raise SettingsError("OUTBOX_POLL_SECONDS: must be positive")
