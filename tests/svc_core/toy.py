"""A toy service used by the chassis tests (and the README example's twin)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from svc_core import (
    Auth,
    AuthSettings,
    Conflict,
    Id,
    Index,
    Int,
    Mongo,
    MongoSettings,
    PageQuery,
    RouteTable,
    Schema,
    Service,
    Str,
    Timestamp,
    body,
    current_claims,
    env,
    fields,
    find_page,
    keys,
    new_id,
    query,
    utcnow,
    validate,
)

routes = RouteTable()


class ToySettings(MongoSettings, AuthSettings):
    greeting_secret: str = env("TOY_SECRET", "dev-only-change-me", secret=True)
    slow_seconds: float = env("TOY_SLOW_SECONDS", 1.0)


class NoteIn(Schema):
    title = Str(required=True, strip=True, line=True, validate=validate.Length(min=1, max=100))
    stars = Int(load_default=0, validate=validate.Range(min=0, max=5))
    tags = fields.List(Str(validate=validate.Length(min=1, max=20)), load_default=list)


class NoteOut(Schema):
    id = Id()
    title = fields.String()
    stars = fields.Integer()
    created_at = Timestamp()


@routes.post("/notes", body=NoteIn, response=NoteOut, status=201, errors=(409,))
async def create_note(request: web.Request) -> dict[str, Any]:
    """Create a note."""
    data = body(request)
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
    return doc


@routes.get("/notes", query=PageQuery, response=NoteOut, many=True)
async def list_notes(request: web.Request) -> dict[str, Any]:
    """List my notes."""
    q = query(request)
    return await find_page(
        request.app[keys.MONGO_DB].notes,
        {"owner": current_claims(request).sub},
        limit=q["limit"],
        cursor=q["cursor"],
    )


@routes.post("/notes/ping")
async def ping_note(request: web.Request) -> web.Response:
    """A route that takes no body."""
    return web.json_response({"pong": True})


@routes.get("/public/hello", public=True)
async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


@routes.post("/public/hits", public=True)
async def hit(request: web.Request) -> web.Response:
    """Counts in Redis: used to show recovery after a Redis restart."""
    return web.json_response({"hits": await request.app[keys.REDIS].incr("toy:hits")})


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


service = Service(
    name="toy",
    port=3999,
    settings=ToySettings,
    routes=routes,
    uses=[Mongo([Index("notes", [("owner", 1), ("created_at", -1), ("_id", -1)])]), Auth()],
)
create_toy_app = service.create_app

if __name__ == "__main__":
    service.main()
