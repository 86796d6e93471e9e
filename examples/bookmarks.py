"""A complete service on svc_core: bookmarks, owned by the caller, listed newest first."""
from aiohttp import web
from svc_core import (Auth, AuthSettings, Id, Index, Mongo, MongoSettings, PageQuery, RouteTable,
                      Schema, Service, Str, Timestamp, body, current_claims, fields, find_page,
                      keys, new_id, query, utcnow, validate)
routes = RouteTable()

class BookmarkSettings(MongoSettings, AuthSettings):  # MONGO_URL, REDIS_URL, JWT_... variables
    pass

class BookmarkIn(Schema):  # unknown fields and wrong types are a 422
    url = Str(required=True, validate=validate.URL(schemes={"http", "https"}))
    title = Str(required=True, strip=True, line=True, validate=validate.Length(min=1, max=200))

class BookmarkOut(Schema):  # what a client gets back: these fields only
    id, url, title, created_at = Id(), fields.String(), fields.String(), Timestamp()

@routes.post("/bookmarks", body=BookmarkIn, response=BookmarkOut, status=201)  # needs a token
async def add_bookmark(request: web.Request) -> dict:
    doc = {"_id": new_id(), "owner": current_claims(request).sub, **body(request),
           "created_at": utcnow()}
    await request.app[keys.MONGO_DB].bookmarks.insert_one(doc)
    return doc  # rendered through BookmarkOut

@routes.get("/bookmarks", query=PageQuery, response=BookmarkOut, many=True)
async def list_bookmarks(request: web.Request) -> dict:
    q, owner = query(request), current_claims(request).sub
    return await find_page(request.app[keys.MONGO_DB].bookmarks, {"owner": owner},
                           limit=q["limit"], cursor=q["cursor"])

INDEXES = [Index("bookmarks", [("owner", 1), ("created_at", -1), ("_id", -1)])]  # find_page's
service = Service(name="bookmarks", port=3010, settings=BookmarkSettings, routes=routes,
                  uses=[Mongo(INDEXES), Auth()])
if __name__ == "__main__":
    service.main()  # python examples/bookmarks.py
