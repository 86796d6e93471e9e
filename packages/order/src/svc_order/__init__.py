"""Order service: orders and their state machine, paid and refunded by payment events."""

from svc_order.manifest import create_app, service
from svc_order.settings import OrderSettings

__all__ = ["OrderSettings", "create_app", "service"]
