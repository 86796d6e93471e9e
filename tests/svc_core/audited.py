"""A service that records audit events, for the chassis' audit tests (svc_core.audit)."""

from __future__ import annotations

from aiohttp import web

from svc_core import (
    Audit,
    AuditSettings,
    Auth,
    AuthSettings,
    Conflict,
    Forbidden,
    MongoSettings,
    RouteTable,
    Schema,
    Service,
    Str,
    TooManyRequests,
    Unauthorized,
    audit,
    body,
    new_id,
)

routes = RouteTable()


class AuditedSettings(MongoSettings, AuthSettings, AuditSettings):
    pass


class SignIn(Schema):
    username = Str(required=True)
    password = Str(required=True)


class ThingIn(Schema):
    name = Str(required=True)


@routes.post("/signin", public=True, body=SignIn, status=204, errors=(401,))
async def sign_in(request: web.Request) -> None:
    """Public: the actor is anonymous until the password is right."""
    data = body(request)
    async with audit.event(request, "auth.login") as event:
        event.about("customer", f"cust-{data['username']}")
        if data["password"] != "right":
            raise Unauthorized("Wrong.", code="invalid_credentials")
        event.by(f"cust-{data['username']}")


@routes.post("/things", body=ThingIn, status=201, errors=(403, 409, 429))
async def create_thing(request: web.Request) -> web.Response:
    """Authenticated: the actor is the token's subject."""
    thing_id = new_id()
    async with audit.event(request, "thing.create") as event:
        event.about("thing", thing_id)
        name = body(request)["name"]
        if name == "taken":
            raise Conflict("Taken.", code="thing_taken")
        if name == "forbidden":
            raise Forbidden("Not yours.", code="not_yours")
        if name == "declined":
            event.outcome = "failure"
            raise TooManyRequests("Slow down.", retry_after=1, code="declined_anyway")
    return web.json_response({"id": thing_id}, status=201)


@routes.post("/leaky", public=True, body=SignIn, status=204)
async def leaky(request: web.Request) -> None:
    """Hands secrets to the audit log on purpose: they must not be stored."""
    data = body(request)
    await audit.record(
        request,
        "leaky.call",
        outcome="success",
        detail={
            "password": data["password"],
            "refresh_token": data["password"],
            "card_number": data["password"],
            "cvc": "123",
            "api_key": data["password"],
            "user": data["username"],
            "size": 3,
        },
    )


@routes.get("/plain", public=True)
async def plain(request: web.Request) -> web.Response:
    return web.json_response({"audited": False})


service = Service(
    name="audited",
    port=3997,
    settings=AuditedSettings,
    routes=routes,
    uses=[Audit(), Auth()],
)
