"""Routes that carry their contract: how the resource in the path is loaded, the request
schemas, the response schema and status, public or not.

One declaration feeds every consumer, so they cannot drift apart: the chassis' request pipeline
(authenticate → load → validate → handle → render, see :mod:`svc_core.pipeline`) and
``/openapi.json``.

    routes = RouteTable()

    @routes.patch("/orders/{order_id}", load=owned_order, body=OrderUpdate, response=OrderOut)
    async def update_order(request: web.Request) -> Order:
        order: Order = resource(request)      # loaded (404 already answered)
        changes = body(request)               # validated (422 already answered)
        ...
        return updated                        # rendered through OrderOut
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from aiohttp import web
from marshmallow import Schema

#: A handler returns a response, or the value its route's ``response`` schema renders
#: (``None`` for a route without one: an empty response with the route's status).
Handler = Callable[[web.Request], Awaitable[Any]]
#: Loads the resource a route's path names (raises ``NotFound``); runs before validation.
Loader = Callable[[web.Request], Awaitable[Any]]
SchemaType = type[Schema] | Schema

ROUTE_ATTR = "__svc_route__"


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    public: bool = False
    body: SchemaType | None = None
    query: SchemaType | None = None
    response: SchemaType | None = None
    status: int = 200
    summary: str = ""
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    #: the list shape ``{"items": [response...], "next_cursor"}`` in OpenAPI
    many: bool = False
    #: the token may also come as ``?jwt=`` (the WebSocket route only; REST takes the header)
    query_token: bool = False
    #: loads the resource named in the path before the request is validated (404 before 422)
    load: Loader | None = None
    #: a schema of the path's parameters, checked before ``load`` (a malformed name is a 422)
    path_params: SchemaType | None = None
    #: headers of every response of this route, problems included (e.g. Cache-Control)
    headers: tuple[tuple[str, str], ...] = ()
    #: more OpenAPI parameter objects (request headers a handler checks itself)
    parameters: tuple[Mapping[str, Any], ...] = ()
    #: the handler reads the body itself (multipart, byte streams, WebSocket): the chassis
    #: neither reads nor validates it
    raw_body: bool = False

    def schema_instance(self, which: str) -> Schema | None:
        value: SchemaType | None = getattr(self, which)
        if value is None:
            return None
        return value() if isinstance(value, type) else value


def route_spec(handler: Any) -> RouteSpec | None:
    """The spec of a handler registered through a :class:`RouteTable`, if any."""
    return getattr(handler, ROUTE_ATTR, None)


class RouteTable:
    """Like ``web.RouteTableDef``, with contract metadata kept on each handler."""

    def __init__(self) -> None:
        self._specs: list[RouteSpec] = []

    def __iter__(self) -> Iterator[RouteSpec]:
        return iter(self._specs)

    def route(
        self,
        method: str,
        path: str,
        *,
        public: bool = False,
        body: SchemaType | None = None,
        query: SchemaType | None = None,
        response: SchemaType | None = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
        content_type: str = "application/json",
        many: bool = False,
        query_token: bool = False,
        load: Loader | None = None,
        path_params: SchemaType | None = None,
        headers: Mapping[str, str] | None = None,
        parameters: tuple[Mapping[str, Any], ...] = (),
        raw_body: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            doc = (handler.__doc__ or "").strip()
            spec = RouteSpec(
                method=method.upper(),
                path=path,
                handler=handler,
                public=public,
                body=body,
                query=query,
                response=response,
                status=status,
                summary=doc.splitlines()[0] if doc else handler.__name__.replace("_", " "),
                errors=errors,
                content_type=content_type,
                many=many,
                query_token=query_token,
                load=load,
                path_params=path_params,
                headers=tuple((headers or {}).items()),
                parameters=parameters,
                raw_body=raw_body,
            )
            setattr(handler, ROUTE_ATTR, spec)
            self._specs.append(spec)
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def head(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("HEAD", path, **kw)

    def options(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("OPTIONS", path, **kw)

    def add_to(self, app: web.Application) -> None:
        heads = {spec.path for spec in self._specs if spec.method == "HEAD"}
        for spec in self._specs:
            # GET routes answer HEAD too (aiohttp's add_get), unless HEAD is declared itself.
            if spec.method == "GET":
                app.router.add_get(spec.path, spec.handler, allow_head=spec.path not in heads)
            else:
                app.router.add_route(spec.method, spec.path, spec.handler)


def public(handler: Handler) -> Handler:
    """Mark a plain aiohttp handler (not declared through a RouteTable) as needing no token."""
    handler.__svc_public__ = True  # type: ignore[attr-defined]
    return handler


def is_public(handler: Any) -> bool:
    spec = route_spec(handler)
    if spec is not None:
        return spec.public
    return bool(getattr(handler, "__svc_public__", False))
