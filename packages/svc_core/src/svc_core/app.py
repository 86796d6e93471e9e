"""The app factory: one call composes a service from its routes and the resources it declares.

``create_app`` does no I/O. Clients are opened and closed in ``cleanup_ctx`` in a fixed order
(HTTP session, MongoDB, Redis, auth, then the service's own contexts), so a service's contexts
can use every chassis resource and are torn down before them.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from svc_core import keys, mongo
from svc_core.auth import Claims, KeySet, RevocationList, TokenVerifier, load_public_keys
from svc_core.cors import setup_cors
from svc_core.endpoints import add_endpoints
from svc_core.keys import ACCESS_LOG, CHECKS, OPENAPI
from svc_core.logs import AccessLog, service_var
from svc_core.metrics import Metrics
from svc_core.middleware import Chassis
from svc_core.openapi import build_spec
from svc_core.redis import open_redis
from svc_core.routing import RouteTable
from svc_core.settings import Settings

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

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
        app[keys.REVOCATIONS] = revocations
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
    chassis = Chassis(settings, metrics, access, auth=auth)
    app = web.Application(
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
    app[CHECKS] = {}
    app[OPENAPI] = build_spec(title or f"{name} service", version, list(routes))

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

    add_endpoints(app)
    routes.add_to(app)
    if settings.cors_origins:
        setup_cors(app, settings.cors_origins)

    async def install_chassis(app: web.Application) -> None:
        chassis.install(app)

    app.on_startup.append(install_chassis)
    return app


def current_claims(request: web.Request) -> Claims:
    """The verified claims of the request's access token (routes that are not public)."""
    return request[keys.CLAIMS]
