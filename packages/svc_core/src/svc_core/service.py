"""The service manifest: one object says what a service is.

    service = Service(
        name="order",
        port=3003,
        settings=OrderSettings,
        routes=routes,
        uses=[Mongo(INDEXES), Auth(), Events(consume=[Consume(PAYMENTS, "order", on_payment)])],
        parts=PARTS,
    )

The chassis composes the app from it (:meth:`Service.create_app`), ``python -m svc_<name>``
serves it (:meth:`Service.main`), and tools enumerate services from the manifests registered under
the ``svc.services`` entry point group (:func:`discover`): the dev stack, nox, the OpenAPI and
configuration consistency tests. A package registers its manifest in its ``pyproject.toml``:

    [project.entry-points."svc.services"]
    order = "svc_order.manifest:service"
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aiohttp import web

from svc_core import keys
from svc_core.resources import CleanupCtx, Http, Resource, with_requirements
from svc_core.routing import RouteTable
from svc_core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

ENTRY_POINT_GROUP = "svc.services"
#: more manifests as ``module:attribute`` references, comma-separated (a service that is not an
#: installed package: a throwaway in a test, an example)
EXTRA_SERVICES_VAR = "SVC_EXTRA_SERVICES"

S = TypeVar("S", bound=Settings)
P = TypeVar("P")

_NAME = re.compile(r"[a-z][a-z0-9]{1,30}\Z")


def valid_service_name(name: str) -> bool:
    """2-31 characters of a-z and 0-9, starting with a letter (``svc_<name>`` is its package)."""
    return bool(_NAME.match(name))


class Parts(Generic[P]):
    """A service's own parts (repositories, clients, domain services), built once at startup by
    ``build`` and reached by every handler through one typed accessor::

        @dataclasses.dataclass(frozen=True)
        class OrderParts:
            settings: OrderSettings
            orders: OrderRepository

        async def build(app: web.Application, settings: OrderSettings) -> AsyncIterator[OrderParts]:
            yield OrderParts(settings=settings, orders=OrderRepository(app[keys.MONGO_DB]))

        PARTS = Parts(build)
        ...
        orders = PARTS.of(request).orders
    """

    def __init__(self, build: Callable[[web.Application, Any], AsyncIterator[P]]) -> None:
        self.build = build
        self.key: web.AppKey[P] = web.AppKey(f"{build.__module__}.parts")

    def of(self, where: web.Request | web.Application) -> P:
        app = where.app if isinstance(where, web.Request) else where
        return app[self.key]

    def context(self) -> CleanupCtx:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            generator = self.build(app, app[keys.SETTINGS])
            app[self.key] = await anext(generator)
            yield
            await anext(generator, None)

        return ctx


@dataclasses.dataclass(frozen=True)
class Service(Generic[S]):
    """What a service is. See the module docstring."""

    name: str
    port: int
    settings: type[S]
    routes: RouteTable
    #: the resources it uses; each brings its settings mixin, cleanup context and readiness check
    uses: Sequence[Resource] = ()
    #: its own parts, built once at startup after the resources
    parts: Parts[Any] | None = None
    #: background work of its own (relays, sweepers), started after the parts
    background: Sequence[CleanupCtx] = ()
    #: run when the server stops accepting, before anything is torn down (close WebSockets)
    on_shutdown: Sequence[Callable[[web.Application], Awaitable[None]]] = ()
    #: the services it calls over HTTP: service name -> the settings field holding its base URL
    calls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: it holds the private key that signs access tokens (the customer service)
    signs_tokens: bool = False
    title: str = ""
    version: str = "0.1.0"

    def __post_init__(self) -> None:
        if not valid_service_name(self.name):
            raise ValueError(f"service name {self.name!r}: 2-31 of a-z 0-9, starting with a letter")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"{self.name}: port {self.port} is not a TCP port")
        fields = {f.name for f in dataclasses.fields(self.settings)}
        for resource in self.resources:
            mixin = resource.settings_type
            if not issubclass(self.settings, mixin):
                raise TypeError(
                    f"{self.name}: uses {type(resource).__name__}(), so its settings class "
                    f"{self.settings.__name__} must inherit svc_core.{mixin.__name__}"
                )
        for called, field in self.calls.items():
            if field not in fields:
                raise TypeError(
                    f"{self.name}: calls {called!r} through settings field {field!r}, "
                    f"which {self.settings.__name__} does not have"
                )
        if not self.title:
            object.__setattr__(self, "title", f"{self.name.capitalize()} service")

    @property
    def resources(self) -> tuple[Resource, ...]:
        """``uses`` with what each resource requires, and ``Http`` when it calls others."""
        uses: list[Resource] = list(self.uses)
        if self.calls and not any(isinstance(r, Http) for r in uses):
            uses.append(Http())
        return with_requirements(uses)

    def uses_resource(self, kind: type[Resource]) -> bool:
        return any(isinstance(r, kind) for r in self.resources)

    def call_variables(self) -> dict[str, str]:
        """service name -> the environment variable that holds its base URL."""
        fields = {f.name: f for f in dataclasses.fields(self.settings)}
        return {called: fields[field].metadata["env"] for called, field in self.calls.items()}

    def load_settings(self, environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
        return self.settings.from_env(environ, **overrides)

    def listen_port(self, settings: Settings) -> int:
        return settings.port or self.port

    def create_app(self, settings: S | None = None) -> web.Application:
        """The aiohttp application (no I/O until it starts)."""
        from svc_core.app import build_app

        settings = settings if settings is not None else self.load_settings()
        if not isinstance(settings, self.settings):
            raise TypeError(f"{self.name}: settings must be a {self.settings.__name__}")
        return build_app(self, settings)

    def main(self) -> None:
        """``python -m svc_<name>``: settings from the environment, serve until SIGTERM."""
        from svc_core.runner import run

        run(self)


def settings_of(where: web.Request | web.Application) -> Settings:
    """The running service's settings (typed access: the service's ``Parts`` carry them)."""
    app = where.app if isinstance(where, web.Request) else where
    return app[keys.SETTINGS]


def _load(reference: str) -> Service[Any]:
    module, _, attr = reference.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ["service"]:
        obj = getattr(obj, part)
    if not isinstance(obj, Service):
        raise TypeError(f"{reference} is not a svc_core.Service")
    return obj


def discover(environ: Mapping[str, str] | None = None) -> dict[str, Service[Any]]:
    """Every registered service, by name, in port order: the ``svc.services`` entry points of the
    installed packages, plus ``SVC_EXTRA_SERVICES``. Two services with one name or one port are
    an error that names both."""
    environ = os.environ if environ is None else environ
    found: list[tuple[str, Service[Any]]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.append((f"{ep.value} (entry point {ep.name})", _load(ep.value)))
    for reference in filter(
        None, (r.strip() for r in environ.get(EXTRA_SERVICES_VAR, "").split(","))
    ):
        found.append((f"{reference} ({EXTRA_SERVICES_VAR})", _load(reference)))
    by_name: dict[str, tuple[str, Service[Any]]] = {}
    by_port: dict[int, str] = {}
    for origin, service in found:
        if service.name in by_name:
            if by_name[service.name][1] is service:
                continue
            first = by_name[service.name][0]
            raise ValueError(f"service {service.name!r} is declared twice: {first} and {origin}")
        if service.port in by_port:
            raise ValueError(
                f"port {service.port} is taken twice: by {by_port[service.port]} and by {origin}"
            )
        by_name[service.name] = (origin, service)
        by_port[service.port] = origin
    return {name: svc for name, (_, svc) in sorted(by_name.items(), key=lambda kv: kv[1][1].port)}


def iter_routes(services: Mapping[str, Service[Any]]) -> Iterator[tuple[str, str, str]]:
    """(service, method, path) of every declared route."""
    for name, service in services.items():
        for spec in service.routes:
            yield name, spec.method, spec.path
