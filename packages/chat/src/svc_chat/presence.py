"""Who is in a room, across instances (Centrifugo / Phoenix Presence in Redis).

Each socket in a room is one entry of the sorted set ``chat:presence:{room}``, scored with the
time it expires. The instance that holds the socket refreshes its entries every
``refresh`` seconds; readers ignore expired entries. So an instance that dies (no leave, no
cleanup) drops out of every list within ``ttl`` seconds, and the surviving instances, which
recompute the lists of their rooms on each refresh, tell their sockets within ``ttl + refresh``.

Presence lists customers, each once, however many sockets they have open. A frame is sent to a
room's sockets when the list changes, and always to a socket that has just joined. Join and
leave announce a change on the room's channel, so every instance recomputes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from svc_chat.connection import Connection
from svc_chat.fanout import PREFIX, Fanout
from svc_chat.hub import Hub

log = logging.getLogger("svc_chat.presence")

Members = tuple[tuple[str, str], ...]  # (customer id, username), sorted by id


def presence_key(room_id: str) -> str:
    return f"{PREFIX}presence:{room_id}"


class Presence:
    def __init__(
        self,
        redis: Redis,
        hub: Hub,
        fanout: Fanout,
        *,
        instance: str,
        ttl: float,
        refresh: float,
    ) -> None:
        self.redis = redis
        self.hub = hub
        self.fanout = fanout
        self.instance = instance
        self.ttl = ttl
        self.refresh = refresh
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        hub.on_presence = self.schedule

    def _entry(self, connection: Connection) -> str:
        return json.dumps(
            [connection.customer_id, connection.claims.username, f"{self.instance}:{connection.id}"]
        )

    # --- entering and leaving ---------------------------------------------------------------

    async def entered(self, room_id: str, connection: Connection) -> None:
        try:
            await self._write({room_id: [connection]})
        except (RedisError, OSError) as exc:
            log.warning("presence not recorded", extra={"error": repr(exc)})
        await self.fanout.publish(room_id, {"kind": "presence"})
        await self._update(room_id, joiner=connection)

    async def left(self, room_id: str, connection: Connection) -> None:
        try:
            await self.redis.zrem(presence_key(room_id), self._entry(connection))
        except (RedisError, OSError) as exc:
            log.warning("presence not removed", extra={"error": repr(exc)})
        await self.fanout.publish(room_id, {"kind": "presence"})
        self.schedule(room_id)

    async def _write(self, entries: dict[str, list[Connection]]) -> None:
        expires = time.time() + self.ttl
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id, connections in entries.items():
                key = presence_key(room_id)
                pipe.zadd(key, {self._entry(c): expires for c in connections})
                pipe.zremrangebyscore(key, "-inf", time.time())
                pipe.expire(key, int(self.ttl * 2) + 1)
            await pipe.execute()

    # --- reading ----------------------------------------------------------------------------

    async def members(self, room_id: str) -> Members:
        """The room's customers; this instance's own sockets only while Redis cannot say."""
        found: dict[str, str] = {}
        try:
            entries: Any = await self.redis.zrangebyscore(
                presence_key(room_id), time.time(), "+inf"
            )
            for entry in entries:
                customer_id, username, _socket = json.loads(entry)
                found.setdefault(str(customer_id), str(username))
        except (RedisError, OSError, ValueError, TypeError):
            found = {}
            for connection in self.hub.members(room_id):
                found.setdefault(connection.customer_id, connection.claims.username)
        return tuple(sorted(found.items()))

    def schedule(self, room_id: str) -> None:
        """Recompute the room's list soon; at most one computation per room at a time."""
        self._dirty.add(room_id)
        task = self._pending.get(room_id)
        if task is None or task.done():
            self._pending[room_id] = asyncio.get_running_loop().create_task(
                self._recompute(room_id)
            )

    async def _recompute(self, room_id: str) -> None:
        while room_id in self._dirty:
            self._dirty.discard(room_id)
            await self._update(room_id)
        self._pending.pop(room_id, None)

    async def _update(self, room_id: str, *, joiner: Connection | None = None) -> None:
        members = await self.members(room_id)
        feed = self.hub.feeds.get(room_id)
        if feed is None:
            return
        frame = json.dumps(
            {
                "type": "presence",
                "room_id": room_id,
                "members": [{"id": cid, "username": name} for cid, name in members],
            },
            ensure_ascii=False,
        )
        changed = members != feed.presence
        feed.presence = members
        for connection in list(feed.members):
            if changed or connection is joiner:
                connection.send(frame)

    # --- keeping entries alive --------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_forever(), name="svc-chat-presence")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._pending.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            entries = {room_id: list(feed.members) for room_id, feed in self.hub.feeds.items()}
            entries = {room_id: conns for room_id, conns in entries.items() if conns}
            if not entries:
                continue
            try:
                await self._write(entries)
            except (RedisError, OSError) as exc:
                log.warning("presence refresh failed", extra={"error": repr(exc)})
            for room_id in entries:
                self.schedule(room_id)
