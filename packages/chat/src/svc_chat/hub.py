"""This instance's rooms: which local sockets follow each one, and the seam between stored
history and live delivery.

Each room with a local member has a :class:`Feed` that delivers the room's messages to its
sockets strictly in ``seq`` order, each once. Messages reach a feed from three places: this
instance's own posts (at once, Redis or not), Redis pub/sub (other instances' posts), and
MongoDB (catch-up). Because ``seq`` has no gaps and N+1 is stored only once N is readable
(repository.py), a feed that is offered N+2 while expecting N reads N and N+1 from MongoDB at
once instead of waiting for them; and every time the room's subscription is (re)confirmed the
feed reads whatever was stored since its position. So pub/sub only makes delivery prompt: a
message lost by pub/sub (Redis down, a subscription not yet confirmed) arrives through MongoDB.

A socket joining with ``last_seen_id`` (seq X) reads X+1... from MongoDB in pages, then, under
the feed's lock (the feed cannot move meanwhile), the rest up to the feed's position, and
becomes a member at that position: no gap, no duplicate. Each socket also remembers the last
``seq`` it was given per room and never takes one at or below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from svc_chat.connection import Connection, SocketStats
from svc_chat.fanout import Fanout
from svc_chat.repository import Message, MessageRepository
from svc_chat.schemas import render_message
from svc_core import tracing
from svc_core.metrics import Family, Metrics

log = logging.getLogger("svc_chat.hub")

REPLAY_PAGE = 200
RETRY_AFTER = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """A stored message as it travels: its place in the room and its frame, encoded once."""

    seq: int
    frame: str

    @classmethod
    def of(cls, message: dict[str, Any], seq: int) -> Delivery:
        frame = json.dumps({"type": "message", "message": message}, ensure_ascii=False)
        return cls(seq, frame)

    @classmethod
    def stored(cls, doc: Message) -> Delivery:
        return cls.of(render_message(doc), int(doc["seq"]))


class Feed:
    """One room's ordered delivery to this instance's sockets."""

    def __init__(self, room_id: str, messages: MessageRepository) -> None:
        self.room_id = room_id
        self.messages = messages
        self.members: set[Connection] = set()
        self.joining = 0
        self.next_seq = 0  # 0: not read yet
        self.lock = asyncio.Lock()
        self.presence: tuple[tuple[str, str], ...] | None = None
        self._held: dict[int, Delivery] = {}
        self._draining: asyncio.Task[None] | None = None
        self._catch_up_wanted = False

    async def start(self) -> None:
        async with self.lock:
            if not self.next_seq:
                self.next_seq = await self.messages.last_seq(self.room_id) + 1
        if self._held or self._catch_up_wanted:
            self._drain_soon()

    # --- what arrives -----------------------------------------------------------------------

    def offer(self, delivery: Delivery) -> None:
        if self.next_seq and delivery.seq < self.next_seq:
            return  # delivered already
        self._held.setdefault(delivery.seq, delivery)
        self._drain_soon()

    def catch_up(self) -> None:
        """Read what was stored since this feed's position (the subscription is back)."""
        self._catch_up_wanted = True
        self._drain_soon()

    def _drain_soon(self) -> None:
        if self._draining is None or self._draining.done():
            self._draining = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                async with self.lock:
                    if not self.next_seq:
                        return  # start() has not run; it reads the position itself
                    if self._catch_up_wanted:
                        self._catch_up_wanted = False
                        await self._read_stored(before=None)
                    await self._advance()
                if not self._catch_up_wanted:
                    return
        except Exception as exc:  # MongoDB unavailable: keep what is held, try again
            log.warning("feed stalled", extra={"room_id": self.room_id, "error": repr(exc)})
            self._catch_up_wanted = True
            await asyncio.sleep(RETRY_AFTER)
            if self.members:
                self._draining = None
                self._drain_soon()

    async def _read_stored(self, *, before: int | None) -> None:
        after = self.next_seq - 1
        while True:
            found = await self.messages.between(
                self.room_id, after=after, before=before, limit=REPLAY_PAGE
            )
            for doc in found:
                self._held.setdefault(int(doc["seq"]), Delivery.stored(doc))
            if len(found) < REPLAY_PAGE:
                return
            after = int(found[-1]["seq"])

    async def _advance(self) -> None:
        """Deliver held messages from ``next_seq`` on, filling gaps from MongoDB."""
        while self._held:
            delivery = self._held.pop(self.next_seq, None)
            if delivery is not None:
                self._deliver(delivery)
                self.next_seq += 1
                continue
            lowest = min(self._held)
            if lowest < self.next_seq:
                del self._held[lowest]
                continue
            await self._read_stored(before=lowest)
            if self.next_seq not in self._held:  # cannot happen while seq has no gaps
                log.error("gap in the room's sequence", extra={"room_id": self.room_id})
                self.next_seq = min(self._held)

    def _deliver(self, delivery: Delivery) -> None:
        for connection in list(self.members):
            if connection.rooms.get(self.room_id, 0) < delivery.seq:
                connection.rooms[self.room_id] = delivery.seq
                connection.send(delivery.frame)

    async def stop(self) -> None:
        if self._draining is not None:
            self._draining.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._draining

    # --- who follows it ---------------------------------------------------------------------

    async def add(self, connection: Connection, *, after: int | None) -> None:
        """Make ``connection`` a member; with ``after``, first replay the messages after it."""
        if after is not None:
            # The long part of a replay waits for this socket only, outside the lock.
            while after < self.next_seq - REPLAY_PAGE:
                page = await self.messages.between(
                    self.room_id, after=after, before=self.next_seq, limit=REPLAY_PAGE
                )
                if not page:
                    break
                for doc in page:
                    await connection.send_waiting(Delivery.stored(doc).frame)
                after = int(page[-1]["seq"])
        async with self.lock:
            position = self.next_seq - 1
            while after is not None and after < position:
                rest = await self.messages.between(
                    self.room_id, after=after, before=self.next_seq, limit=REPLAY_PAGE
                )
                if not rest:
                    break
                for doc in rest:
                    connection.send(Delivery.stored(doc).frame)
                after = int(rest[-1]["seq"])
            # A client may have seen more than this feed has delivered yet (another instance
            # stored it a moment ago): never hand it a message at or before its own last one.
            connection.rooms[self.room_id] = max(position, after or 0)
            self.members.add(connection)


class Hub:
    """This instance's feeds, created on a room's first local member, dropped after its last."""

    def __init__(
        self, messages: MessageRepository, fanout_factory: Callable[[Hub], Fanout]
    ) -> None:
        self.messages = messages
        self.on_presence: Callable[[str], None] | None = None
        self.feeds: dict[str, Feed] = {}
        self.connections: set[Connection] = set()
        self.stats = SocketStats()
        self.fanout = fanout_factory(self)
        self.accepting = True

    def sample(self, metrics: Metrics, queue_limit: int) -> list[Family]:
        """This instance's sockets as metrics (on each scrape: one pass over the sockets)."""
        depths = [c.queue.qsize() for c in self.connections]
        return [
            metrics.gauge("svc_ws_connections", "Open WebSockets.").add(len(depths)),
            metrics.gauge(
                "svc_ws_send_queue_depth_max", "Frames waiting in the fullest send queue."
            ).add(max(depths, default=0)),
            metrics.gauge(
                "svc_ws_send_queue_frames", "Frames waiting in every send queue together."
            ).add(sum(depths)),
            metrics.gauge(
                "svc_ws_send_queue_limit", "A send queue's size: full, the socket is closed."
            ).add(queue_limit),
            metrics.counter(
                "svc_ws_slow_consumer_closes",
                "Sockets closed with 1013 because their send queue was full.",
            ).add(self.stats.slow_closes),
        ]

    # --- from the fan-out -------------------------------------------------------------------

    def on_event(self, room_id: str, event: dict[str, Any]) -> None:
        feed = self.feeds.get(room_id)
        if feed is None:
            return
        if event.get("kind") == "message":
            try:
                delivery = Delivery.of(event["message"], int(event["seq"]))
            except (KeyError, TypeError, ValueError):
                log.warning("ignored a malformed message event", extra={"room_id": room_id})
                return
            feed.offer(delivery)
        elif event.get("kind") == "catch_up":
            feed.catch_up()
        elif event.get("kind") == "presence" and self.on_presence is not None:
            self.on_presence(room_id)

    def on_subscribed(self, room_id: str) -> None:
        feed = self.feeds.get(room_id)
        if feed is not None:
            feed.catch_up()

    # --- membership -------------------------------------------------------------------------

    async def join(self, connection: Connection, room_id: str, *, after: int | None) -> None:
        feed = self.feeds.get(room_id)
        if feed is None:
            feed = self.feeds[room_id] = Feed(room_id, self.messages)
            feed.joining += 1
            try:
                await self.fanout.subscribe(room_id)
                await feed.start()
            finally:
                feed.joining -= 1
        feed.joining += 1
        try:
            await feed.start()
            await feed.add(connection, after=after)
        finally:
            feed.joining -= 1

    async def leave(self, connection: Connection, room_id: str) -> None:
        connection.rooms.pop(room_id, None)
        feed = self.feeds.get(room_id)
        if feed is None:
            return
        feed.members.discard(connection)
        if not feed.members and not feed.joining:
            del self.feeds[room_id]
            await feed.stop()
            await self.fanout.unsubscribe(room_id)

    def members(self, room_id: str) -> Iterable[Connection]:
        feed = self.feeds.get(room_id)
        return list(feed.members) if feed is not None else []

    # --- messages ---------------------------------------------------------------------------

    async def publish(self, doc: Message) -> None:
        """A message this instance stored: to its own sockets at once, then to the others."""
        message = render_message(doc)
        feed = self.feeds.get(doc["room_id"])
        if feed is not None:
            feed.offer(Delivery.of(message, int(doc["seq"])))
        event: dict[str, Any] = {"kind": "message", "seq": int(doc["seq"]), "message": message}
        trace = tracing.carrier()  # the sending frame's trace, continued by the other instances
        if trace:
            event["trace"] = trace
        await self.fanout.publish(doc["room_id"], event)

    async def stop(self) -> None:
        for feed in list(self.feeds.values()):
            await feed.stop()
