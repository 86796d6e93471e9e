"""Payment service: idempotent payments behind a provider interface."""

from svc_payment.manifest import create_app, service
from svc_payment.settings import PaymentSettings

__all__ = ["PaymentSettings", "create_app", "service"]
