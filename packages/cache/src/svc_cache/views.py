"""Thin handlers: the chassis has checked the key (422), loaded the entry where the route reads
one (404) and validated the body (422); a handler calls the store and answers the entry.

An entry's value is stored as JSON text and spliced into the response verbatim (never decoded
and re-encoded, so large integers and key order come back exactly as stored): the one response
here not dumped through its schema, which still describes it in ``/openapi.json``.
"""

from __future__ import annotations

from aiohttp import web

from svc_cache.domain import encode_value, remaining_seconds, render_entry
from svc_cache.parts import PARTS
from svc_cache.repository import CacheStore, Stored
from svc_cache.schemas import EntryOut, EntryPut, IncrBody, KeyPath
from svc_core import NotFound, RouteTable, body, current_claims, resource

routes = RouteTable()


def _entry_response(key: str, value_json: str, ttl_seconds: int | None) -> web.Response:
    return web.Response(
        body=render_entry(key, value_json, ttl_seconds),
        content_type="application/json",
        charset="utf-8",
    )


def _store(request: web.Request) -> CacheStore:
    return PARTS.of(request).store


def _owner(request: web.Request) -> str:
    # The namespace comes from the verified token only, never from anything the client sends.
    return current_claims(request).sub


async def stored_entry(request: web.Request) -> Stored:
    stored = await _store(request).get(_owner(request), request.match_info["key"])
    if stored is None:
        raise NotFound("No such cache entry.")
    return stored


async def existing_key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not await _store(request).exists(_owner(request), key):
        raise NotFound("No such cache entry.")
    return key


@routes.get(
    "/cache/{key}", path_params=KeyPath, load=stored_entry, response=EntryOut, errors=(404, 503)
)
async def get_entry(request: web.Request) -> web.Response:
    """Read an entry."""
    stored: Stored = resource(request)
    key = request.match_info["key"]
    return _entry_response(key, stored.value_json, remaining_seconds(stored.pttl_ms))


@routes.put(
    "/cache/{key}", path_params=KeyPath, body=EntryPut, response=EntryOut, errors=(413, 503)
)
async def put_entry(request: web.Request) -> web.Response:
    """Create or replace an entry."""
    key, data = request.match_info["key"], body(request)
    value_json = encode_value(data["value"])
    await _store(request).put(_owner(request), key, value_json, data["ttl_seconds"])
    return _entry_response(key, value_json, data["ttl_seconds"])


@routes.delete(
    "/cache/{key}", path_params=KeyPath, load=existing_key, status=204, errors=(404, 503)
)
async def delete_entry(request: web.Request) -> None:
    """Delete an entry."""
    if not await _store(request).delete(_owner(request), resource(request)):
        raise NotFound("No such cache entry.")  # deleted by someone else meanwhile


@routes.post(
    "/cache/{key}/incr", path_params=KeyPath, body=IncrBody, response=EntryOut, errors=(409, 503)
)
async def increment_entry(request: web.Request) -> web.Response:
    """Add to an integer entry (a missing one starts at 0), keeping its TTL."""
    key = request.match_info["key"]
    stored = await _store(request).incr(_owner(request), key, body(request)["by"])
    return _entry_response(key, stored.value_json, remaining_seconds(stored.pttl_ms))
