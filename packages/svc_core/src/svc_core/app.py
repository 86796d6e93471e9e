"""The app factory: one call composes a service from its routes and the resources it declares.

``create_app`` does no I/O. Clients are opened and closed in ``cleanup_ctx`` in a fixed order
(HTTP session, MongoDB, Redis, auth, then the service's own contexts), so a service's contexts
can use every chassis resource and are torn down before them.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from svc_core import keys, mongo
from svc_core.auth import (
    Claims,
    KeySet,
    RevocationList,
    TokenVerifier,
    bearer_token,
    load_public_keys,
)
from svc_core.errors import (
    PROBLEM_CONTENT_TYPE,
    DependencyUnavailable,
    InternalError,
    Problem,
    SessionRevoked,
    Unauthorized,
)
from svc_core.logs import (
    AccessLog,
    clean_request_id,
    new_request_id,
    request_id_var,
    service_var,
)
from svc_core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from svc_core.metrics import Metrics
from svc_core.openapi import build_spec
from svc_core.redis import open_redis
from svc_core.routing import RouteTable, is_public, route_spec
from svc_core.settings import Settings

log = logging.getLogger("svc_core")

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
ReadinessCheck = Callable[[], Awaitable[None]]

REVOCATIONS = keys.REVOCATIONS
CHECKS: web.AppKey[dict[str, ReadinessCheck]] = web.AppKey("svc_checks")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("svc_openapi")
ACCESS_LOG: web.AppKey[AccessLog] = web.AppKey("svc_access_log")

_DEPENDENCY_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionFailure,
    ServerSelectionTimeoutError,
)
_STATUS_PROBLEMS: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem_response(problem: Problem, request_id: str) -> web.Response:
    return web.Response(
        body=json.dumps(problem.body(request_id)).encode(),
        status=problem.instance_status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def _problem_from_http(exc: web.HTTPException) -> Problem:
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else None
    if exc.status == 404:
        detail = "No route matches this path."
    elif exc.status == 405:
        detail = "This method is not allowed on this path."
    elif exc.status == 413:
        detail = "The request body is too large."
    return Problem(
        detail or exc.reason,
        status=exc.status,
        code=_STATUS_PROBLEMS.get(exc.status, "http_error"),
        headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
    )


def _is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _chassis_middleware(
    settings: Settings, metrics: Metrics, access: AccessLog | None, *, auth: bool
) -> Any:
    """Request id, authentication, error rendering, access log and metrics in one layer.

    One layer rather than five: each aiohttp middleware costs a call and a closure per request,
    and this code runs on every request of every service (see bench/).
    """
    observe = metrics.observe
    perf_counter = time.perf_counter
    service = settings.service_name
    public_cache: dict[Any, bool] = {}

    @web.middleware
    async def chassis(request: web.Request, handler: Any) -> web.StreamResponse:
        started = perf_counter()
        sent_id = request.headers.get("X-Request-ID")
        request_id = (clean_request_id(sent_id) if sent_id else None) or new_request_id()
        request[keys.REQUEST_ID] = request_id
        token = request_id_var.set(request_id)
        service_token = service_var.set(service)
        match = request.match_info
        status = 500
        try:
            try:
                if auth and match.http_exception is None:
                    route_handler = match.handler
                    public = public_cache.get(route_handler)
                    if public is None:
                        public = public_cache[route_handler] = is_public(route_handler)
                    if not public and not _is_preflight(request):
                        await _authenticate(request, route_handler)
                response: web.StreamResponse = await handler(request)
            except Problem as problem:
                response = problem_response(problem, request_id)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = problem_response(_problem_from_http(exc), request_id)
            except _DEPENDENCY_ERRORS as exc:
                log.warning("dependency unavailable", extra={"error": type(exc).__name__})
                response = problem_response(DependencyUnavailable(), request_id)
            except (asyncio.CancelledError, ConnectionResetError):
                status = 499  # the client went away; nothing to answer
                raise
            except Exception:
                log.exception("unhandled error", extra={"path": request.path})
                response = problem_response(InternalError(), request_id)
            status = response.status
            if not response.prepared:
                response.headers["X-Request-ID"] = request_id
            return response
        finally:
            elapsed = perf_counter() - started
            resource = match.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            observe(request.method, route, status, elapsed)
            if access is not None:
                access.write(
                    request_id,
                    request.method,
                    request.path,
                    route,
                    status,
                    round(elapsed * 1000, 2),
                )
            request_id_var.reset(token)
            service_var.reset(service_token)

    return chassis


async def _authenticate(request: web.Request, route_handler: Any) -> None:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        spec = route_spec(route_handler)
        if spec is not None and spec.query_token:
            token = request.query.get("jwt") or None
    if token is None:
        raise Unauthorized("A bearer access token is required.")
    claims = await request.app[keys.VERIFIER].verify(token)
    if await request.app[REVOCATIONS].is_revoked(claims.sid):
        raise SessionRevoked()
    request[keys.CLAIMS] = claims


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    # Streamed and WebSocket responses are prepared inside the handler; give them the id too.
    request_id = request.get(keys.REQUEST_ID)
    if request_id is not None and "X-Request-ID" not in response.headers:
        response.headers["X-Request-ID"] = request_id


# --- chassis endpoints ----------------------------------------------------------------------


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    checks = request.app[CHECKS]

    async def run(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), timeout=2.0)
        except TimeoutError:
            return "timeout"
        except Exception as exc:
            return f"unavailable ({type(exc).__name__})"
        return "ok"

    names = list(checks)
    results = await asyncio.gather(*(run(checks[name]) for name in names))
    report = dict(zip(names, results, strict=True))
    ready = all(result == "ok" for result in results)
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": report},
        status=200 if ready else 503,
    )


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[keys.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


for _handler in (_health, _ready, _metrics, _openapi):
    _handler.__svc_public__ = True  # type: ignore[attr-defined]


# --- resource contexts ----------------------------------------------------------------------


def _name_startup_tasks(app: web.Application, name: str) -> None:
    """Background tasks started by the cleanup contexts (consumers, relays) log as ``name``.

    The name is set before the first context starts, inherited by every task created during
    startup, and reset once startup is over (``on_startup`` runs after the cleanup contexts,
    in the same context), so nothing leaks into the code that started the app.
    """
    tokens: list[contextvars.Token[str | None]] = []

    async def set_name(app: web.Application) -> AsyncIterator[None]:
        tokens.append(service_var.set(name))
        yield

    async def reset_name(app: web.Application) -> None:
        if tokens:
            service_var.reset(tokens.pop())

    app.cleanup_ctx.append(set_name)
    app.on_startup.append(reset_name)


def _http_context(app: web.Application) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=60)
        session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10, connect=2)
        )
        app[keys.HTTP] = session
        yield
        await session.close()

    return ctx


def _mongo_context(settings: Settings, indexes: Sequence[mongo.Index], name: str) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        url = settings.resolved_mongo_url()
        client = mongo.open_client(url)
        db = client[settings.mongo_db or name]
        app[keys.MONGO_DB] = db
        app[CHECKS]["mongodb"] = lambda: mongo.ping(db)
        await mongo.apply_indexes(db, indexes)
        yield
        await mongo.close_client(client, url)

    return ctx


def _redis_context(settings: Settings) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        client = open_redis(settings.resolved_redis_url())
        app[keys.REDIS] = client

        async def ping() -> None:
            await client.ping()

        app[CHECKS]["redis"] = ping
        yield
        await client.aclose()

    return ctx


def _auth_context(settings: Settings) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pem = settings.jwt_public_keys
        if settings.jwt_public_keys_file is not None:
            pem += "\n" + settings.jwt_public_keys_file.read_text()
        keyset = KeySet(
            load_public_keys(pem),
            jwks_url=settings.jwks_url,
            session=app.get(keys.HTTP),
        )
        app[keys.VERIFIER] = TokenVerifier(keyset, issuer=settings.jwt_issuer)
        revocations = RevocationList(app[keys.REDIS])
        app[REVOCATIONS] = revocations
        revocations.start()
        yield
        await revocations.stop()

    return ctx


# --- the factory ----------------------------------------------------------------------------


def create_app(
    settings: Settings,
    routes: RouteTable,
    *,
    title: str | None = None,
    version: str = "0.1.0",
    mongo_indexes: Sequence[mongo.Index] | None = None,
    redis: bool = False,
    auth: bool = True,
    http_client: bool = False,
    contexts: Sequence[CleanupCtx] = (),
    on_shutdown: Sequence[Callable[[web.Application], Awaitable[None]]] = (),
) -> web.Application:
    """Compose a service.

    - ``mongo_indexes``: the service uses MongoDB (``app[keys.MONGO_DB]``) and declares these
      indexes; ``None`` means no MongoDB at all.
    - ``redis``: the service uses Redis (``app[keys.REDIS]``). Auth turns it on (revocations).
    - ``auth``: every route needs a valid access token unless declared ``public=True``.
    - ``http_client``: one pooled ``aiohttp.ClientSession`` at ``app[keys.HTTP]``.
    - ``contexts``: the service's own cleanup contexts, entered after the chassis' resources.
    """
    name = settings.service_name
    metrics = Metrics(name)
    access = AccessLog(name) if settings.access_log else None
    app = web.Application(
        middlewares=[_chassis_middleware(settings, metrics, access, auth=auth)],
        client_max_size=settings.client_max_size,
        handler_args={"max_field_size": 16384},
    )
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = metrics
    if access is not None:
        app[ACCESS_LOG] = access

        async def flush_access_log(app: web.Application) -> None:
            access.flush()

        app.on_cleanup.append(flush_access_log)
    app[keys.ROUTES] = routes
    app[CHECKS] = {}
    app[OPENAPI] = build_spec(title or f"{name} service", version, list(routes))
    app.on_response_prepare.append(_on_prepare)

    _name_startup_tasks(app, name)
    if http_client or (auth and settings.jwks_url):
        app.cleanup_ctx.append(_http_context(app))
    if mongo_indexes is not None:
        app.cleanup_ctx.append(_mongo_context(settings, mongo_indexes, name))
    if redis or auth:
        app.cleanup_ctx.append(_redis_context(settings))
    if auth:
        app.cleanup_ctx.append(_auth_context(settings))
    app.cleanup_ctx.extend(contexts)
    app.on_shutdown.extend(on_shutdown)

    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/openapi.json", _openapi)
    routes.add_to(app)
    if settings.cors_origins:
        _setup_cors(app, settings.cors_origins)
    return app


CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    "If-None-Match",
    "Range",
)
CORS_EXPOSE_HEADERS = (
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "ETag",
    "Content-Disposition",
    "Content-Range",
    "Idempotent-Replayed",
)
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _setup_cors(app: web.Application, origins: Sequence[str]) -> None:
    """CORS for a service reached without the gateway (behind Kong, Kong's cors plugin does it)."""
    import aiohttp_cors

    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=False,
        expose_headers=CORS_EXPOSE_HEADERS,
        allow_headers=CORS_ALLOW_HEADERS,
        allow_methods=CORS_METHODS,
        max_age=3600,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):
        if route.method != "HEAD":
            cors.add(route)


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    """Add a dependency to ``/ready`` (call from a cleanup context)."""
    app[CHECKS][name] = check


def settings_of(app: web.Application) -> Settings:
    return app[keys.SETTINGS]


def current_claims(request: web.Request) -> Claims:
    """The verified claims of the request's access token (routes that are not public)."""
    return request[keys.CLAIMS]
