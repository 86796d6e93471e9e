"""svc_core: the chassis every service is built on.

A service is a package with routes, schemas and one manifest, a :class:`Service` that says what
it is: name, port, settings, routes, the resources it uses and the parts it builds. See
``docs/adding-a-service.md`` and the README's "Add a service" for a complete example.
"""

from svc_core import audit, keys
from svc_core.app import current_claims
from svc_core.audit import AuditSettings
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
from svc_core.events import Event, EventBus, PermanentEventError
from svc_core.mongo import Index
from svc_core.pagination import find_page
from svc_core.pipeline import prepare, problem_response
from svc_core.resources import (
    Audit,
    Auth,
    AuthSettings,
    Consume,
    Events,
    EventsSettings,
    Http,
    Mongo,
    MongoSettings,
    Redis,
    RedisSettings,
)
from svc_core.routing import RouteTable
from svc_core.runner import serve
from svc_core.schema import (
    Bool,
    Email,
    Id,
    Int,
    PageQuery,
    Pattern,
    Schema,
    Str,
    Timestamp,
    fields,
    validate,
)
from svc_core.service import Parts, Service, discover, settings_of
from svc_core.settings import Settings, SettingsError, env
from svc_core.validation import body, query, resource

__all__ = [
    "Audit",
    "AuditSettings",
    "Auth",
    "AuthSettings",
    "BadRequest",
    "Bool",
    "Claims",
    "Conflict",
    "Consume",
    "DependencyUnavailable",
    "Email",
    "Event",
    "EventBus",
    "Events",
    "EventsSettings",
    "Forbidden",
    "Http",
    "Id",
    "Index",
    "Int",
    "Mongo",
    "MongoSettings",
    "NotFound",
    "PageQuery",
    "Parts",
    "Pattern",
    "PayloadTooLarge",
    "PaymentRequired",
    "PermanentEventError",
    "Problem",
    "Redis",
    "RedisSettings",
    "RouteTable",
    "Schema",
    "Service",
    "ServiceUnavailable",
    "SessionRevoked",
    "Settings",
    "SettingsError",
    "Str",
    "Timestamp",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "add_readiness_check",
    "audit",
    "body",
    "current_claims",
    "discover",
    "env",
    "fields",
    "find_page",
    "keys",
    "new_id",
    "prepare",
    "problem_response",
    "query",
    "resource",
    "serve",
    "settings_of",
    "to_rfc3339",
    "utcnow",
    "validate",
]
