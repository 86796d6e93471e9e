"""Composition: the chassis builds a service's app from its manifest (:class:`svc_core.Service`).

``build_app`` does no I/O. Cleanup contexts run in a fixed order: the resources the manifest
uses (HTTP client, MongoDB, Redis, auth, the event bus), then the service's parts, then its
background work and event consumers; they are torn down in reverse.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from svc_core import keys, tracing
from svc_core.auth import Claims
from svc_core.cors import setup_cors
from svc_core.endpoints import PROBES, add_endpoints
from svc_core.keys import ACCESS_LOG, CHECKS, OPENAPI
from svc_core.logs import AccessLog, service_var
from svc_core.metrics import Metrics
from svc_core.openapi import build_spec
from svc_core.pipeline import Chassis
from svc_core.resources import Auth

if TYPE_CHECKING:
    from svc_core.service import Service
    from svc_core.settings import Settings


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


def build_app(service: Service[Any], settings: Settings) -> web.Application:
    """The application of ``service`` with ``settings`` (see :meth:`Service.create_app`)."""
    name = service.name
    metrics = Metrics(name)
    access = AccessLog(name) if settings.access_log else None
    traced = tracing.configure(settings, name)
    chassis = Chassis(
        name,
        metrics,
        access,
        auth=service.uses_resource(Auth),
        quiet=frozenset() if settings.access_log_probes else PROBES,
        traced=traced,
    )
    app = web.Application(
        client_max_size=settings.client_max_size,
        handler_args={"max_field_size": 16384, "auto_decompress": False},
    )
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = metrics
    if access is not None:
        app[ACCESS_LOG] = access

        async def flush_access_log(app: web.Application) -> None:
            access.flush()

        app.on_cleanup.append(flush_access_log)
    app[CHECKS] = {}
    app[OPENAPI] = build_spec(service.title, service.version, list(service.routes))

    _name_startup_tasks(app, name)
    resources = service.resources
    for resource in resources:
        opened = resource.open(name)
        if opened is not None:
            app.cleanup_ctx.append(opened)
    if service.parts is not None:
        app.cleanup_ctx.append(service.parts.context())
    app.cleanup_ctx.extend(service.background)
    app.on_shutdown.extend(service.on_shutdown)
    for resource in resources:
        started = resource.start(name)
        if started is not None:
            app.cleanup_ctx.append(started)

    add_endpoints(app)
    service.routes.add_to(app)
    if settings.cors_origins:
        setup_cors(app, settings.cors_origins)

    async def install_chassis(app: web.Application) -> None:
        chassis.install(app)

    app.on_startup.append(install_chassis)
    return app


def current_claims(request: web.Request) -> Claims:
    """The verified claims of the request's access token (routes that are not public)."""
    return request[keys.CLAIMS]
