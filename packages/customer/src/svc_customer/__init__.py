"""Customer service: registration, login, JWT issuing, sessions, profile."""

from svc_customer.app import create_app
from svc_customer.settings import CustomerSettings

__all__ = ["CustomerSettings", "create_app"]
