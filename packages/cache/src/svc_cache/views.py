"""Thin handlers: check the key and body, call the store, render the entry."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from svc_cache.domain import encode_value, key_errors, remaining_seconds, render_entry
from svc_cache.repository import STORE
from svc_cache.schemas import EntryOut, EntryPut, IncrBody
from svc_core import NotFound, RouteTable, ValidationFailed, body, current_claims, query

routes = RouteTable()


def _entry_response(key: str, value_json: str, ttl_seconds: int | None) -> web.Response:
    return web.Response(
        body=render_entry(key, value_json, ttl_seconds),
        content_type="application/json",
        charset="utf-8",
    )


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    errors = key_errors(key)
    if errors:
        raise ValidationFailed(errors)
    return key


async def _key_and_body(request: web.Request) -> tuple[str, dict[str, Any]]:
    """The path key and the body, with both sets of problems in one 422."""
    key = request.match_info["key"]
    errors = key_errors(key)
    try:
        data = await body(request)
    except ValidationFailed as exc:
        raise ValidationFailed({**errors, **exc.errors}) from None
    if errors:
        raise ValidationFailed(errors)
    return key, data


def _owner(request: web.Request) -> str:
    # The namespace comes from the verified token only, never from anything the client sends.
    return current_claims(request).sub


@routes.get("/cache/{key}", response=EntryOut, errors=(404, 422, 503))
async def get_entry(request: web.Request) -> web.Response:
    """Read an entry."""
    key = _key(request)
    stored = await request.app[STORE].get(_owner(request), key)
    if stored is None:
        raise NotFound("No such cache entry.")
    query(request)  # no parameters; after the 404, as the contract orders checks
    return _entry_response(key, stored.value_json, remaining_seconds(stored.pttl_ms))


@routes.put("/cache/{key}", body=EntryPut, response=EntryOut, errors=(413, 503))
async def put_entry(request: web.Request) -> web.Response:
    """Create or replace an entry."""
    key, data = await _key_and_body(request)
    query(request)
    value_json = encode_value(data["value"])
    await request.app[STORE].put(_owner(request), key, value_json, data["ttl_seconds"])
    return _entry_response(key, value_json, data["ttl_seconds"])


@routes.delete("/cache/{key}", status=204, errors=(404, 422, 503))
async def delete_entry(request: web.Request) -> web.Response:
    """Delete an entry."""
    key = _key(request)
    store, owner = request.app[STORE], _owner(request)
    if not await store.exists(owner, key):
        raise NotFound("No such cache entry.")
    query(request)
    await body(request)
    if not await store.delete(owner, key):  # deleted by someone else meanwhile
        raise NotFound("No such cache entry.")
    return web.Response(status=204)


@routes.post("/cache/{key}/incr", body=IncrBody, response=EntryOut, errors=(409, 503))
async def increment_entry(request: web.Request) -> web.Response:
    """Add to an integer entry (a missing one starts at 0), keeping its TTL."""
    key, data = await _key_and_body(request)
    query(request)
    stored = await request.app[STORE].incr(_owner(request), key, data["by"])
    return _entry_response(key, stored.value_json, remaining_seconds(stored.pttl_ms))
