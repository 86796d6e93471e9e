"""A toy service used by the chassis tests (and the README example's twin)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from aiohttp import web

from svc_core import (
    Conflict,
    Index,
    Int,
    PageQuery,
    RouteTable,
    Schema,
    Settings,
    Str,
    body,
    create_app,
    current_claims,
    env,
    fields,
    find_page,
    keys,
    new_id,
    query,
    run,
    to_rfc3339,
    utcnow,
    validate,
)

routes = RouteTable()


class ToySettings(Settings):
    service_name: ClassVar[str] = "toy"
    default_port: ClassVar[int] = 3999
    greeting_secret: str = env("TOY_SECRET", "dev-only-change-me", secret=True)
    slow_seconds: float = env("TOY_SLOW_SECONDS", 1.0)


class NoteIn(Schema):
    title = Str(required=True, strip=True, validate=validate.Length(min=1, max=100))
    stars = Int(load_default=0, validate=validate.Range(min=0, max=5))
    tags = fields.List(Str(validate=validate.Length(min=1, max=20)), load_default=list)


class NoteOut(Schema):
    id = fields.String()
    title = fields.String()
    stars = fields.Integer()
    created_at = fields.String()


def render(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "title": doc["title"],
        "stars": doc["stars"],
        "created_at": to_rfc3339(doc["created_at"]),
    }


@routes.post("/notes", body=NoteIn, response=NoteOut, status=201, errors=(409,))
async def create_note(request: web.Request) -> web.Response:
    """Create a note."""
    data = await body(request)
    db = request.app[keys.MONGO_DB]
    if data["title"] == "taken":
        raise Conflict("That title is taken.", code="title_taken")
    doc = {
        "_id": new_id(),
        "owner": current_claims(request).sub,
        "title": data["title"],
        "stars": data["stars"],
        "created_at": utcnow(),
    }
    await db.notes.insert_one(doc)
    return web.json_response(render(doc), status=201)


@routes.get("/notes", query=PageQuery, response=NoteOut, many=True)
async def list_notes(request: web.Request) -> web.Response:
    """List my notes."""
    q = query(request)
    page = await find_page(
        request.app[keys.MONGO_DB].notes,
        {"owner": current_claims(request).sub},
        limit=q["limit"],
        cursor=q["cursor"],
        render=render,
    )
    return web.json_response(page)


@routes.post("/notes/ping")
async def ping_note(request: web.Request) -> web.Response:
    """A route that takes no body."""
    await body(request)
    return web.json_response({"pong": True})


@routes.get("/public/hello", public=True)
async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


@routes.get("/public/slow", public=True)
async def slow(request: web.Request) -> web.Response:
    """Takes a while: used to show that shutdown lets in-flight requests finish."""
    await asyncio.sleep(float(request.app[keys.SETTINGS].slow_seconds))
    return web.json_response({"slow": "done"})


@routes.get("/boom")
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail /etc/passwd")


@routes.get("/whoami")
async def whoami(request: web.Request) -> web.Response:
    claims = current_claims(request)
    return web.json_response({"sub": claims.sub, "sid": claims.sid})


def create_toy_app(settings: ToySettings) -> web.Application:
    return create_app(
        settings,
        routes,
        mongo_indexes=[Index("notes", [("owner", 1), ("created_at", -1), ("_id", -1)])],
        redis=True,
    )


if __name__ == "__main__":
    run(ToySettings, create_toy_app)
