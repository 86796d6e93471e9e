"""The request pipeline every route of every service runs (see :class:`Chassis`):

    request id → authenticate (401) → load the path's resource (404) → validate the query and
    the body (422) → handle → render through the route's response schema

with every error rendered as problem+json, and the access log and metrics around it all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from bisect import bisect_left
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from svc_core import keys
from svc_core.auth import RevocationList, TokenVerifier, authenticate, cached_claims
from svc_core.errors import (
    PROBLEM_CONTENT_TYPE,
    DependencyUnavailable,
    InternalError,
    MethodNotAllowed,
    NotFound,
    Problem,
    ValidationFailed,
)
from svc_core.logs import (
    AccessLog,
    new_request_id,
    request_id_var,
    service_var,
)
from svc_core.metrics import BUCKETS, Metrics, Series
from svc_core.render import Dump, dumper, json_bytes
from svc_core.routing import RouteSpec, is_public, public, route_spec
from svc_core.schema import load as load_schema
from svc_core.validation import validate_body, validate_query

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
        body=json_bytes(problem.body(request_id)),
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


WRAPPED_ATTR = "__svc_chassis__"
#: api.md "request id": a client's value is kept when it is 1-200 visible ASCII characters
_CLIENT_REQUEST_ID = re.compile(r"[!-~]{1,200}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SERVER = "svc"  # the Server header: no product versions


def request_id_of(request: web.BaseRequest) -> str:
    """The client's ``X-Request-ID`` when it is acceptable (api.md), else a generated one."""
    sent = request.headers.get("X-Request-ID")
    if sent is not None and _CLIENT_REQUEST_ID.fullmatch(sent):
        return sent
    return new_request_id()


JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class Renderer:
    """Turns a handler's return value into a response: the value itself if it is one, else the
    value dumped through the route's ``response`` schema (``many``: the list shape), with the
    route's status and headers; ``None`` is an empty response where no schema is declared.

    The schema is compiled once (:func:`svc_core.render.dumper`: the same dict as
    ``schema.dump``, without marshmallow's per-field layers) and the JSON encoded by orjson."""

    __slots__ = ("dump", "headers", "many", "route", "schema", "status")

    def __init__(self, spec: RouteSpec | None) -> None:
        self.route = f"{spec.method} {spec.path}" if spec is not None else "this handler"
        self.schema = spec.schema_instance("response") if spec is not None else None
        self.many = spec is not None and spec.many
        self.status = spec.status if spec is not None else 200
        self.dump: Dump | None = None
        if self.schema is not None:
            # the list shape dumps item by item; a schema that is itself ``many`` is left whole
            many_schema = self.schema.many
            self.dump = self.schema.dump if many_schema and self.many else dumper(self.schema)
        headers: CIMultiDict[str] = CIMultiDict(spec.headers if spec is not None else ())
        if self.schema is not None:
            headers.setdefault("Content-Type", JSON_CONTENT_TYPE)
        headers.setdefault("Server", SERVER)
        self.headers = headers  # copied by every Response made from it

    def __call__(self, value: Any) -> web.StreamResponse:
        if isinstance(value, web.StreamResponse):
            return value
        dump = self.dump
        if dump is None:
            if value is not None:
                raise TypeError(f"{self.route} declares no response schema to render with")
            return web.Response(status=self.status, headers=self.headers)
        if self.many:
            items = value["items"]
            data = {
                "items": dump(items) if self.schema.many else [dump(item) for item in items],  # type: ignore[union-attr]
                "next_cursor": value["next_cursor"],
            }
        else:
            data = dump(value)
        return web.Response(body=json_bytes(data), status=self.status, headers=self.headers)


class Chassis:
    """What runs around every handler: request id, authentication, problem+json errors,
    access log and metrics.

    It is applied by wrapping each route's handler once, at startup, rather than as an aiohttp
    middleware: any middleware makes aiohttp add one of its own and build a handler chain for
    every request, which measured at about 15% of a small request's cost (bench/).
    """

    def __init__(
        self,
        service: str,
        metrics: Metrics,
        access: AccessLog | None,
        *,
        auth: bool,
        quiet: frozenset[str] = frozenset(),
        traced: bool = False,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.access = access
        self.auth = auth
        self.quiet = quiet  # routes left out of the access log (probes)
        # bound by install(), once the auth resource has opened (None: authenticate() decides)
        self.verifier: TokenVerifier | None = None
        self.revocations: RevocationList | None = None
        self.traced = traced  # a span per request (svc_core.tracing); off: not even a check

    def wrap(self, handler: Any, route: str) -> Any:
        """``handler`` with the chassis around it; ``route`` labels its metrics and logs."""
        if getattr(handler, WRAPPED_ATTR, False):
            return handler
        needs_token = self.auth and not is_public(handler)
        spec = route_spec(handler)
        query_token = spec is not None and spec.query_token
        allowed_params = frozenset({"jwt"}) if query_token else frozenset()
        load = spec.load if spec is not None else None
        query_schema = spec.schema_instance("query") if spec is not None else None
        body_schema = spec.schema_instance("body") if spec is not None else None
        path_schema = spec.schema_instance("path_params") if spec is not None else None
        render = Renderer(spec)
        route_headers = spec.headers if spec is not None else ()
        check_query = spec is not None
        check_body = spec is not None and not spec.raw_body and spec.method in _BODY_METHODS
        metrics = self.metrics
        # the route's own method is counted through series bound here (no key tuple, no
        # lookup by labels); another one (HEAD on a GET route) through Metrics.observe
        main_method = spec.method if spec is not None else "GET"
        series_of: dict[int, Series] = {}
        access = None if route in self.quiet else self.access
        # with tracing on, the access line carries the request span's ids (bound once, here)
        log_access = (
            None if access is None else access.write_traced if self.traced else access.write
        )
        service = self.service
        verifier, revocations = self.verifier, self.revocations
        perf_counter = time.perf_counter
        id_ok = _CLIENT_REQUEST_ID.fullmatch

        async def chassis(request: web.Request) -> web.StreamResponse:
            started = perf_counter()
            headers = request.headers
            request_id = headers.get("X-Request-ID")
            if request_id is None or id_ok(request_id) is None:
                request_id = new_request_id()
            request[keys.REQUEST_ID] = request_id
            token = request_id_var.set(request_id)
            service_token = service_var.set(service)
            method = request.method
            status = 500
            try:
                try:
                    if needs_token and (method != "OPTIONS" or not _is_preflight(request)):
                        claims = None
                        if verifier is not None and revocations is not None:  # no coroutine
                            claims = cached_claims(
                                verifier, revocations, headers.get("Authorization")
                            )
                        if claims is None:
                            claims = await authenticate(
                                request.app,
                                headers.get("Authorization"),
                                request.query.get("jwt") if query_token else None,
                            )
                        request[keys.CLAIMS] = claims
                    if "/." in request.path and _has_dot_segment(request.path):
                        # Kong removes percent-encoded dot segments before routing, so the
                        # resource such a path names is never reached through the gateway
                        raise NotFound("No route matches this path.")
                    if path_schema is not None or load is not None:
                        await _load(request, path_schema, load, check_body, body_schema)
                    # no query string and no query schema: nothing to check, and query() reads {}
                    if check_query and (query_schema is not None or "?" in request.raw_path):
                        request[keys.QUERY] = validate_query(request, query_schema, allowed_params)
                    if check_body and keys.BODY not in request:
                        request[keys.BODY] = await validate_body(request, body_schema)
                    response = render(await handler(request))
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
                    response_headers = response.headers
                    response_headers["X-Request-ID"] = request_id
                    response_headers["Server"] = SERVER
                    for name, value in route_headers:  # problems included
                        response_headers.setdefault(name, value)
                return response
            finally:
                elapsed = perf_counter() - started
                if method == main_method:
                    series = series_of.get(status)
                    if series is None:
                        series = series_of[status] = metrics.series(method, route, status)
                    series.count += 1
                    series.total += elapsed
                    series.buckets[bisect_left(BUCKETS, elapsed)] += 1
                else:
                    metrics.observe(method, route, status, elapsed)
                if log_access is not None:
                    log_access(request_id, method, request.path, route, status, elapsed)
                request_id_var.reset(token)
                service_var.reset(service_token)

        functools.update_wrapper(chassis, handler)  # keeps __svc_route__ for validation
        setattr(chassis, WRAPPED_ATTR, True)
        if self.traced:
            from svc_core import tracing

            traced = tracing.server(chassis, handler, route, service)
            setattr(traced, WRAPPED_ATTR, True)
            return traced
        return chassis

    def install(self, app: web.Application) -> None:
        """Wrap every route registered so far and add the catch-all that answers 404/405 as
        problems. Runs in ``on_startup``: after every route is registered, before the router
        freezes, so a route a service added straight to ``app.router`` is protected too."""
        if self.auth:
            self.verifier = app.get(keys.VERIFIER)
            self.revocations = app.get(keys.REVOCATIONS)
        for route in app.router.routes():
            resource = route.resource
            label = resource.canonical if resource is not None else "unmatched"
            # aiohttp keeps a route's handler in ResourceRoute._handler (tests/svc_core pin it)
            route._handler = self.wrap(route.handler, label)
        app.router.add_route("*", "/{tail:.*}", self.wrap(_unmatched, "unmatched"))


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in path.split("/"))


async def _load(
    request: web.Request,
    path_schema: Any,
    load: Any,
    check_body: bool,
    body_schema: Any,
) -> None:
    """The path's parameters (422), then its resource (404). A route with no resource to load
    reports a malformed path parameter together with the body's problems, in one 422."""
    if path_schema is not None:
        try:
            load_schema(path_schema, dict(request.match_info))
        except ValidationFailed as path_errors:
            if load is None and check_body:
                try:
                    await validate_body(request, body_schema)
                except ValidationFailed as body_errors:
                    raise ValidationFailed({**path_errors.errors, **body_errors.errors}) from None
            raise
    if load is not None:
        request[keys.RESOURCE] = await load(request)


@public
async def _unmatched(request: web.Request) -> web.StreamResponse:
    """No route matched: 405 with ``Allow`` when the path exists under other methods, else 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if any(getattr(r.handler, "__wrapped__", None) is _unmatched for r in resource):
            continue  # the catch-all itself
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        raise MethodNotAllowed(
            "This method is not allowed on this path.",
            headers={"Allow": ",".join(sorted(allowed))},
        )
    raise NotFound("No route matches this path.")


async def prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Prepare a streamed or WebSocket response inside a handler, with ``X-Request-ID`` set
    (a response the handler returns unprepared gets it from the chassis)."""
    request_id = request.get(keys.REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id
    response.headers["Server"] = SERVER
    await response.prepare(request)
