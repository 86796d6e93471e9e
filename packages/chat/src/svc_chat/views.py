"""Thin handlers: the chassis has authenticated (401), loaded the room (404) and validated the
request (422); a handler stores, delivers and returns what the route's schema renders. Creating a
room is audited (svc_core.audit)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from svc_chat import domain
from svc_chat.parts import PARTS, Chat
from svc_chat.repository import Message, Room
from svc_chat.schemas import (
    MessageCreate,
    MessageListQuery,
    MessageOut,
    RoomCreate,
    RoomListQuery,
    RoomOut,
)
from svc_chat.ws import serve_socket
from svc_core import (
    NotFound,
    RouteTable,
    audit,
    body,
    current_claims,
    query,
    resource,
    utcnow,
)

routes = RouteTable()


def _chat(request: web.Request) -> Chat:
    return PARTS.of(request)


async def room_in_path(request: web.Request) -> Room:
    room = await _chat(request).rooms.get(request.match_info["room_id"])
    if room is None:
        raise NotFound("No such room.")
    return room


@routes.post("/chat/rooms", body=RoomCreate, response=RoomOut, status=201)
async def create_room(request: web.Request) -> Room:
    """Create a room (public: anyone may read, join and post)."""
    room = domain.new_room(
        name=body(request)["name"], owner_id=current_claims(request).sub, now=utcnow()
    )
    async with audit.event(request, "chat.room_create", target=("room", room["_id"])) as event:
        event.detail["name"] = room["name"]
        await _chat(request).rooms.insert(room)
    return room


@routes.get("/chat/rooms", query=RoomListQuery, response=RoomOut, many=True)
async def list_rooms(request: web.Request) -> dict[str, Any]:
    """Every room, newest first."""
    q = query(request)
    return await _chat(request).rooms.page(limit=q["limit"], cursor=q["cursor"])


@routes.get(
    "/chat/rooms/{room_id}/messages",
    load=room_in_path,
    query=MessageListQuery,
    response=MessageOut,
    many=True,
    errors=(404,),
)
async def list_messages(request: web.Request) -> dict[str, Any]:
    """A room's messages, newest first."""
    room: Room = resource(request)
    q = query(request)
    return await _chat(request).messages.page(room["_id"], limit=q["limit"], cursor=q["cursor"])


@routes.post(
    "/chat/rooms/{room_id}/messages",
    load=room_in_path,
    body=MessageCreate,
    response=MessageOut,
    status=201,
    errors=(404,),
)
async def post_message(request: web.Request) -> Message:
    """Post a message; it is stored, then delivered live to the room's sockets."""
    room: Room = resource(request)
    data = body(request)
    claims = current_claims(request)
    message = domain.new_message(
        room_id=room["_id"],
        sender_id=claims.sub,
        sender_username=claims.username,
        body=data["body"],
        now=utcnow(),
    )
    chat = _chat(request)
    stored = await chat.messages.append(message)
    await chat.hub.publish(stored)
    return stored


@routes.get("/chat/ws", query_token=True, status=101, errors=(426,))
async def websocket(request: web.Request) -> web.StreamResponse:
    """The WebSocket (token in Authorization or ?jwt=); frames in the service's README."""
    return await serve_socket(request, _chat(request), current_claims(request))
