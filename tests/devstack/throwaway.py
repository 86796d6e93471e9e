"""A service that exists only in the test tree: registered through SVC_EXTRA_SERVICES, it must
show up in the dev stack, the OpenAPI test and the consistency checks without editing them."""

from __future__ import annotations

from aiohttp import web

from svc_core import Auth, AuthSettings, RouteTable, Schema, Service, Str, body, fields, validate

routes = RouteTable()


class EchoIn(Schema):
    text = Str(required=True, line=True, validate=validate.Length(min=1, max=100))


class EchoOut(Schema):
    text = fields.String()


@routes.post("/throwaway/echo", body=EchoIn, response=EchoOut, status=201)
async def echo(request: web.Request) -> dict[str, str]:
    """Echo the text back."""
    return body(request)


class ThrowawaySettings(AuthSettings):
    pass


service = Service(
    name="throwaway", port=3099, settings=ThrowawaySettings, routes=routes, uses=[Auth()]
)
clash = Service(
    name="throwaway", port=3003, settings=ThrowawaySettings, routes=routes, uses=[Auth()]
)
