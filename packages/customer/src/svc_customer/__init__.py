"""Customer service: registration, login, JWT issuing, sessions, profile."""

from svc_customer.manifest import create_app, service
from svc_customer.settings import CustomerSettings

__all__ = ["CustomerSettings", "create_app", "service"]
