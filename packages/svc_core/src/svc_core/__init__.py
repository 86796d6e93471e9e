"""svc_core: the chassis every service is built on.

A service is a short module of routes and schemas plus a ``create_app(settings)`` that calls
:func:`create_app`. See the README's "Add a service" section for a complete example.
"""

from svc_core import keys
from svc_core.app import create_app, current_claims
from svc_core.auth import Claims
from svc_core.clock import new_id, to_rfc3339, utcnow
from svc_core.endpoints import add_readiness_check
from svc_core.errors import (
    BadRequest,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    Problem,
    ServiceUnavailable,
    SessionRevoked,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from svc_core.events import Event, EventBus, PermanentEventError, consume, event_bus_context
from svc_core.middleware import prepare, problem_response
from svc_core.mongo import Index
from svc_core.pagination import find_page
from svc_core.routing import RouteTable
from svc_core.runner import run, serve
from svc_core.schema import Bool, Email, Int, PageQuery, Schema, Str, fields, validate
from svc_core.settings import Settings, SettingsError, env
from svc_core.validation import body, query

__all__ = [
    "BadRequest",
    "Bool",
    "Claims",
    "Conflict",
    "DependencyUnavailable",
    "Email",
    "Event",
    "EventBus",
    "Forbidden",
    "Index",
    "Int",
    "NotFound",
    "PageQuery",
    "PayloadTooLarge",
    "PaymentRequired",
    "PermanentEventError",
    "Problem",
    "RouteTable",
    "Schema",
    "ServiceUnavailable",
    "SessionRevoked",
    "Settings",
    "SettingsError",
    "Str",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "add_readiness_check",
    "body",
    "consume",
    "create_app",
    "current_claims",
    "env",
    "event_bus_context",
    "fields",
    "find_page",
    "keys",
    "new_id",
    "prepare",
    "problem_response",
    "query",
    "run",
    "serve",
    "to_rfc3339",
    "utcnow",
    "validate",
]
