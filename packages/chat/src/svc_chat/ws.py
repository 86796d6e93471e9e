"""The WebSocket protocol of api.md: one reader per socket handles the client's frames in
order; everything the server says goes through the socket's queue (connection.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from svc_chat import domain
from svc_chat.connection import Connection
from svc_chat.frames import FrameError, parse_frame
from svc_chat.parts import Chat
from svc_chat.schemas import render_message
from svc_core import (
    Claims,
    DependencyUnavailable,
    Problem,
    ServiceUnavailable,
    SessionRevoked,
    Unauthorized,
    prepare,
    tracing,
    utcnow,
)
from svc_core.auth import authenticate

log = logging.getLogger("svc_chat.ws")

MAX_MESSAGE_SIZE = 1024 * 1024  # frames above 16 KiB get an error frame; above this aiohttp closes
INTERNAL_ERROR = 1011
_FINISHED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


async def serve_socket(request: web.Request, chat: Chat, claims: Claims) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(
        heartbeat=chat.settings.heartbeat, max_msg_size=MAX_MESSAGE_SIZE, autoping=True
    )
    if not ws.can_prepare(request).ok:
        raise Problem(
            "This route speaks WebSocket only.",
            status=426,
            code="upgrade_required",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )
    if not chat.hub.accepting:
        raise ServiceUnavailable("The instance is shutting down.", code="shutting_down")
    await prepare(request, ws)
    connection = Connection(ws, claims, queue_size=chat.settings.socket_queue, stats=chat.hub.stats)
    connection.start()
    chat.hub.connections.add(connection)
    protocol = Protocol(chat, request.app)
    handshake = tracing.current_link()  # each frame's span links to the handshake's
    try:
        while (message := await connection.receive()) is not None:
            if message.type == WSMsgType.TEXT:
                if not connection.closing:
                    with tracing.frame_span("chat frame", handshake):
                        await protocol.handle(connection, message.data)
            elif message.type == WSMsgType.BINARY:
                connection.error("bad_frame", "Frames are JSON text.")
            elif message.type in _FINISHED:
                break
    finally:
        chat.hub.connections.discard(connection)
        for room_id in list(connection.rooms):
            await chat.hub.leave(connection, room_id)
            await chat.presence.left(room_id, connection)
        await connection.stop()
    return ws


class Protocol:
    def __init__(self, chat: Chat, app: web.Application) -> None:
        self.chat = chat
        self.app = app

    async def handle(self, connection: Connection, text: str) -> None:
        try:
            frame = parse_frame(text)
        except FrameError as error:
            connection.error(error.code, error.detail)
            return
        try:
            await getattr(self, f"on_{frame['type']}")(connection, frame)
        except Exception:
            log.exception("frame failed", extra={"type": frame["type"]})
            connection.close_now(INTERNAL_ERROR, "internal error")

    async def on_join(self, connection: Connection, frame: dict[str, Any]) -> None:
        room_id = frame["room_id"]
        if await self.chat.rooms.get(room_id) is None:
            connection.error("unknown_room", "No such room.")
            return
        after: int | None = None
        last_seen_id = frame.get("last_seen_id")
        if last_seen_id is not None:
            seen = await self.chat.messages.get(last_seen_id, room_id=room_id)
            if seen is None:
                connection.error(
                    "unknown_message", "last_seen_id is not a message of this room; joined live."
                )
            else:
                after = int(seen["seq"])
        connection.send_json({"type": "joined", "room_id": room_id})
        if room_id in connection.rooms:  # joined already: it gets every message live
            await self.chat.presence.entered(room_id, connection)
            return
        await self.chat.hub.join(connection, room_id, after=after)
        await self.chat.presence.entered(room_id, connection)

    async def on_leave(self, connection: Connection, frame: dict[str, Any]) -> None:
        room_id = frame["room_id"]
        if room_id not in connection.rooms:
            connection.error("not_joined", "This socket has not joined that room.")
            return
        await self.chat.hub.leave(connection, room_id)
        connection.send_json({"type": "left", "room_id": room_id})
        await self.chat.presence.left(room_id, connection)

    async def on_message(self, connection: Connection, frame: dict[str, Any]) -> None:
        room_id = frame["room_id"]
        if room_id not in connection.rooms:
            connection.error("not_joined", "Join the room before posting in it.")
            return
        if not connection.rate.allow():
            connection.error(
                "rate_limited", f"At most {domain.MESSAGES_PER_SECOND} messages per second."
            )
            return
        message = domain.new_message(
            room_id=room_id,
            sender_id=connection.customer_id,
            sender_username=connection.claims.username,
            body=frame["body"],
            now=utcnow(),
        )
        # The ack goes before the sender's own copy: hold the room's deliveries meanwhile.
        connection.hold()
        try:
            stored = await self.chat.messages.append(message)
        except BaseException:
            connection.release()
            raise
        ack = {"type": "ack", "client_id": frame["client_id"], "message": render_message(stored)}
        connection.release(first=json.dumps(ack, ensure_ascii=False))
        await self.chat.hub.publish(stored)

    async def on_auth(self, connection: Connection, frame: dict[str, Any]) -> None:
        try:
            # the chassis' one entry point: canonical spelling, strict claims, revocation
            claims = await asyncio.wait_for(
                authenticate(self.app, None, query_token=frame["token"]), 1.0
            )
        except SessionRevoked:
            connection.error("unauthorized", "That token's session is revoked.")
            return
        except (Unauthorized, DependencyUnavailable, TimeoutError):
            connection.error("unauthorized", "The token is not valid; the socket keeps its own.")
            return
        if claims.sub != connection.customer_id:
            connection.error("unauthorized", "The token is another customer's.")
            return
        connection.claims = claims
        connection.send_json({"type": "authed"})
