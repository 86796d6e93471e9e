"""The order service's settings (every chassis setting applies too; see svc_core's README)."""

from __future__ import annotations

from typing import ClassVar

from svc_core import Settings, env


class OrderSettings(Settings):
    service_name: ClassVar[str] = "order"
    default_port: ClassVar[int] = 3003

    events_retry_after: float = env(
        "ORDER_EVENTS_RETRY_AFTER",
        1.0,
        help="seconds a failed payment event waits before it is retried",
    )
    events_max_attempts: int = env(
        "ORDER_EVENTS_MAX_ATTEMPTS",
        5,
        help="deliveries of a failing payment event before it is parked in events:payments:dead",
    )
    events_consumer: str = env(
        "ORDER_EVENTS_CONSUMER",
        "",
        help="this instance's consumer name in group 'order' (stable across restarts); "
        "default EVENTS_CONSUMER or order-<hostname>",
    )
