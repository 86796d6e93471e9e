"""The only module that knows the ``rooms`` and ``messages`` collections and their indexes.

A message's ``seq`` (1, 2, 3, ... per room) is assigned by inserting it: read the room's last
``seq``, insert with the next one, and let the unique index on ``(room_id, seq)`` refuse the
loser of a race, which retries. So ``seq`` N+1 is only ever stored once N is visible: a reader
that sees N+1 can always read every earlier message, which is what makes replay and gap filling
exact (see hub.py).
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from svc_core import DependencyUnavailable, Index, find_page
from svc_core.mongo import Database

ROOMS = "rooms"
MESSAGES = "messages"

INDEXES = [
    # GET /chat/rooms: newest first (find_page's keyset)
    Index(ROOMS, [("created_at", -1), ("_id", -1)]),
    # the room's order: unique, so two writers can never take the same place
    Index(MESSAGES, [("room_id", 1), ("seq", 1)], unique=True),
    # GET /chat/rooms/{id}/messages: newest first
    Index(MESSAGES, [("room_id", 1), ("created_at", -1), ("_id", -1)]),
]

Room = dict[str, Any]
Message = dict[str, Any]

APPEND_ATTEMPTS = 100  # each lost attempt means another message was stored in the room


class RoomRepository:
    def __init__(self, db: Database, *, reads: Database | None = None) -> None:
        self.rooms = db[ROOMS]
        self.listed = (reads if reads is not None else db)[ROOMS]  # MONGO_READ_PREFERENCE

    async def insert(self, room: Room) -> Room:
        await self.rooms.insert_one(room)
        return room

    async def get(self, room_id: str) -> Room | None:
        return await self.rooms.find_one({"_id": room_id})

    async def page(self, *, limit: int, cursor: str | None) -> dict[str, Any]:
        return await find_page(self.listed, {}, limit=limit, cursor=cursor)


class MessageRepository:
    def __init__(self, db: Database, *, reads: Database | None = None) -> None:
        self.messages = db[MESSAGES]
        # GET history may come from a secondary (MONGO_READ_PREFERENCE); the sequence numbers
        # and the WebSocket replay (``between``) read the primary, so recovery misses nothing
        self.history = (reads if reads is not None else db)[MESSAGES]

    async def append(self, message: Message) -> Message:
        """Store ``message`` as the room's next one; returns it with its ``seq``."""
        for _attempt in range(APPEND_ATTEMPTS):
            seq = await self.last_seq(message["room_id"]) + 1
            stored = {**message, "seq": seq}
            try:
                await self.messages.insert_one(stored)
            except DuplicateKeyError:
                continue
            return stored
        raise DependencyUnavailable("The room is too busy; try again.")

    async def last_seq(self, room_id: str) -> int:
        last = (
            await self.messages.find({"room_id": room_id}, {"seq": 1})
            .sort("seq", -1)
            .limit(1)
            .to_list(None)
        )
        return int(last[0]["seq"]) if last else 0

    async def get(self, message_id: str, *, room_id: str) -> Message | None:
        return await self.messages.find_one({"_id": message_id, "room_id": room_id})

    async def between(
        self, room_id: str, *, after: int, before: int | None = None, limit: int = 500
    ) -> list[Message]:
        """The room's messages with ``after < seq < before``, in ``seq`` order."""
        seq: dict[str, int] = {"$gt": after}
        if before is not None:
            seq["$lt"] = before
        return list(
            await self.messages.find({"room_id": room_id, "seq": seq})
            .sort("seq", 1)
            .limit(limit)
            .to_list(None)
        )

    async def page(self, room_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        return await find_page(
            self.history,
            {"room_id": room_id},
            limit=limit,
            cursor=cursor,
            scope=f"messages:{room_id}",
        )
