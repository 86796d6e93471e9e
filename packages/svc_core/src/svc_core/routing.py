"""Routes that carry their contract: request schemas, response schema, status, public or not.

One declaration feeds three consumers, so they cannot drift apart: the handler's validation
(:func:`svc_core.validation.body` / :func:`~svc_core.validation.query`), the auth middleware
(``public=True`` routes skip the token check) and ``/openapi.json``.

    routes = RouteTable()

    @routes.post("/orders", body=OrderCreate, response=OrderOut, status=201)
    async def create_order(request: web.Request) -> web.Response:
        data = await body(request)
        ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from marshmallow import Schema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
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

    def add_to(self, app: web.Application) -> None:
        for spec in self._specs:
            # GET routes answer HEAD too, as aiohttp's add_get does by default.
            if spec.method == "GET":
                app.router.add_get(spec.path, spec.handler)
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
