"""The chassis middleware: request id, authentication, problem+json errors, access log and
metrics, in one layer (each aiohttp middleware costs a call per request; this one runs on every
request of every service, see bench/)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from svc_core import keys
from svc_core.auth import bearer_token
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
from svc_core.metrics import Metrics
from svc_core.routing import is_public, route_spec
from svc_core.settings import Settings

log = logging.getLogger("svc_core")

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


def chassis_middleware(
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
    if await request.app[keys.REVOCATIONS].is_revoked(claims.sid):
        raise SessionRevoked()
    request[keys.CLAIMS] = claims


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    # Streamed and WebSocket responses are prepared inside the handler; give them the id too.
    request_id = request.get(keys.REQUEST_ID)
    if request_id is not None and "X-Request-ID" not in response.headers:
        response.headers["X-Request-ID"] = request_id
