"""A complete service on svc_core: bookmarks, owned by the caller, listed newest first."""
from typing import ClassVar
from aiohttp import web
from svc_core import (Index, PageQuery, RouteTable, Schema, Settings, Str, body, create_app,
                      current_claims, find_page, keys, new_id, query, run, to_rfc3339, utcnow,
                      validate)
routes = RouteTable()

class BookmarkSettings(Settings):
    service_name: ClassVar[str] = "bookmarks"  # also its MongoDB database
    default_port: ClassVar[int] = 3010

class BookmarkIn(Schema):  # unknown fields and wrong types are a 422
    url = Str(required=True, validate=validate.URL(schemes={"http", "https"}))
    title = Str(required=True, strip=True, validate=validate.Length(min=1, max=200))

def render(doc: dict) -> dict:
    return {"id": doc["_id"], "url": doc["url"], "title": doc["title"],
            "created_at": to_rfc3339(doc["created_at"])}

@routes.post("/bookmarks", body=BookmarkIn, status=201)  # needs a token: auth is the default
async def add_bookmark(request: web.Request) -> web.Response:
    doc = {"_id": new_id(), "owner": current_claims(request).sub, **await body(request),
           "created_at": utcnow()}
    await request.app[keys.MONGO_DB].bookmarks.insert_one(doc)
    return web.json_response(render(doc), status=201)

@routes.get("/bookmarks", query=PageQuery, many=True)
async def list_bookmarks(request: web.Request) -> web.Response:
    q, owner = query(request), current_claims(request).sub
    page = await find_page(request.app[keys.MONGO_DB].bookmarks, {"owner": owner},
                           limit=q["limit"], cursor=q["cursor"], render=render)
    return web.json_response(page)

def create_bookmarks_app(settings: BookmarkSettings) -> web.Application:
    return create_app(settings, routes, mongo_indexes=[
        Index("bookmarks", [("owner", 1), ("created_at", -1), ("_id", -1)])])
if __name__ == "__main__":
    run(BookmarkSettings, create_bookmarks_app)  # python examples/bookmarks.py
