"""Typed keys for what the chassis puts on the application and on each request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp
    from redis.asyncio import Redis

    from svc_core.audit import AuditLog
    from svc_core.auth import Claims, RevocationList, TokenVerifier
    from svc_core.events import EventBus
    from svc_core.logs import AccessLog
    from svc_core.metrics import Metrics
    from svc_core.mongo import Database
    from svc_core.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("svc_settings")
MONGO_DB: web.AppKey[Database] = web.AppKey("svc_mongo_db")
#: the same database with MONGO_READ_PREFERENCE: for reads that may be a little stale (lists)
MONGO_READS: web.AppKey[Database] = web.AppKey("svc_mongo_reads")
REDIS: web.AppKey[Redis] = web.AppKey("svc_redis")
VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("svc_verifier")
REVOCATIONS: web.AppKey[RevocationList] = web.AppKey("svc_revocations")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("svc_http")
EVENTS: web.AppKey[EventBus] = web.AppKey("svc_events")
METRICS: web.AppKey[Metrics] = web.AppKey("svc_metrics")
ReadinessCheck = Callable[[], Awaitable[None]]
CHECKS: web.AppKey[dict[str, ReadinessCheck]] = web.AppKey("svc_checks")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("svc_openapi")
ACCESS_LOG: web.AppKey[AccessLog] = web.AppKey("svc_access_log")
AUDIT: web.AppKey[AuditLog] = web.AppKey("svc_audit")

CLAIMS: web.RequestKey[Claims] = web.RequestKey("svc_claims")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("svc_request_id")
#: the validated body and query, and the loaded path resource (svc_core.validation reads them)
BODY: web.RequestKey[dict[str, Any]] = web.RequestKey("svc_body")
QUERY: web.RequestKey[dict[str, Any]] = web.RequestKey("svc_query")
RESOURCE: web.RequestKey[Any] = web.RequestKey("svc_resource")
