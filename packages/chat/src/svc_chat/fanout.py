"""Fan-out across instances: ONE Redis pub/sub connection per process, one channel per room,
subscribed while the room has a local member (encode/broadcaster's shape).

Pub/sub delivers only to whoever is subscribed at that moment, so it is never trusted to be
complete: every time a room's subscription is confirmed (the first time, and again after Redis
comes back, whether this module reconnected or redis-py did it silently) ``on_subscribed``
runs, and the hub catches that room up from MongoDB (see hub.py). A lost connection is
retried with capped exponential backoff; ``up`` says whether the subscription is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from svc_core import tracing

log = logging.getLogger("svc_chat.fanout")

PREFIX = "chat:"
CONTROL = "chat:instances"  # always subscribed: an idle process still notices a lost Redis


def without_retries(redis: Redis) -> Redis:
    """A client like ``redis`` (same server, same options) that tries a command at most twice
    (once more on a fresh connection, for a pooled one that died with the old server) instead
    of redis-py's default of ten retries with backoff: the real-time path must notice an
    outage within its own timeouts, and a post must not wait seconds to learn that Redis did
    not take it (the catch-up from MongoDB covers it)."""
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 1)}
    return Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))


def room_channel(room_id: str) -> str:
    return f"{PREFIX}room:{room_id}"


def room_of(channel: str) -> str | None:
    prefix = f"{PREFIX}room:"
    return channel[len(prefix) :] if channel.startswith(prefix) else None


CATCH_UP = {"kind": "catch_up"}


class Fanout:
    POLL = 0.2  # one wait for a message; bounds how long stop() takes

    def __init__(
        self,
        redis: Redis,
        *,
        on_event: Callable[[str, dict[str, Any]], None],
        on_subscribed: Callable[[str], None],
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self.redis = redis
        self.on_event = on_event
        self.on_subscribed = on_subscribed
        self.backoff = backoff
        self.rooms: set[str] = set()
        self.up = False
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: rooms whose messages may not have reached the other instances (a publish failed)
        self._unannounced: set[str] = set()
        self._announcer: asyncio.Task[None] | None = None

    # --- subscriptions ----------------------------------------------------------------------

    async def subscribe(self, room_id: str) -> None:
        """Follow ``room_id``; returns at once. ``on_subscribed(room_id)`` runs once Redis has
        confirmed it (now, or after the next reconnection)."""
        self.rooms.add(room_id)
        await self._command("subscribe", room_channel(room_id))

    async def unsubscribe(self, room_id: str) -> None:
        self.rooms.discard(room_id)
        await self._command("unsubscribe", room_channel(room_id))

    async def _command(self, name: str, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or not self.up:
            return  # the reconnection subscribes every room in self.rooms
        try:
            await getattr(pubsub, name)(channel)
        except (RedisError, OSError) as exc:
            log.warning("pub/sub command failed", extra={"error": repr(exc)})

    async def publish(self, room_id: str, event: dict[str, Any]) -> bool:
        """Tell every instance following the room; False when Redis did not take it (the
        other instances catch up from MongoDB once their subscription is back)."""
        try:
            await self.redis.publish(room_channel(room_id), json.dumps(event))
        except (RedisError, OSError) as exc:
            log.warning("publish failed", extra={"room_id": room_id, "error": repr(exc)})
            self._unannounced.add(room_id)
            self._announce_soon()
            return False
        return True

    def _announce_soon(self) -> None:
        """Keep announcing the rooms whose publish failed until Redis takes it. Not only when
        this instance's subscription comes back: a publish can fail while the subscription stays
        up (a pooled connection gone stale in a Redis restart), and nothing else would ever
        tell the other instances."""
        if self._stopping or (self._announcer is not None and not self._announcer.done()):
            return
        self._announcer = asyncio.get_running_loop().create_task(
            self._announce(), name="svc-chat-announce"
        )

    async def _announce(self) -> None:
        """Ask every instance following a room whose publish failed to catch that room up from
        MongoDB (their own subscription may never have dropped); retried with backoff."""
        delay = self.backoff[0]
        while self._unannounced and not self._stopping:
            for room_id in list(self._unannounced):
                self._unannounced.discard(room_id)
                try:
                    await self.redis.publish(room_channel(room_id), json.dumps(CATCH_UP))
                except (RedisError, OSError):
                    self._unannounced.add(room_id)
            if self._unannounced:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])

    # --- the reader -------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._follow(), name="svc-chat-fanout")

    async def stop(self) -> None:
        self._stopping = True
        if self._announcer is not None:
            self._announcer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._announcer
            self._announcer = None
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.POLL * 5)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def _follow(self) -> None:
        delay = self.backoff[0]
        while not self._stopping:
            pubsub = self.redis.pubsub()
            self._pubsub = pubsub
            try:
                channels = [room_channel(room) for room in sorted(self.rooms)]
                await pubsub.subscribe(*channels, CONTROL)
                while not self._stopping:
                    message = await pubsub.get_message(timeout=self.POLL)
                    if message is not None:
                        self._handle(message)
                        if self.up:
                            delay = self.backoff[0]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.up:
                    log.warning("pub/sub connection lost", extra={"error": repr(exc)})
                self.up = False
                if not self._stopping:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff[1])
            finally:
                self.up = False
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = str(message.get("channel", ""))
        if kind == "subscribe":
            if channel == CONTROL:
                if not self.up:
                    log.info("pub/sub subscribed")
                self.up = True
                # rooms joined while the connection was down were never subscribed
                missing = [room_channel(r) for r in self.rooms]
                if missing:
                    asyncio.get_running_loop().create_task(self._resubscribe(missing))
                if self._unannounced:
                    self._announce_soon()
            else:
                room = room_of(channel)
                if room is not None and room in self.rooms:
                    self.on_subscribed(room)
            return
        if kind != "message":
            return
        room = room_of(channel)
        if room is None or room not in self.rooms:
            return
        try:
            event = json.loads(message["data"])
        except (ValueError, TypeError):
            log.warning("ignored a malformed fan-out event", extra={"room_id": room})
            return
        if isinstance(event, dict):
            # delivered here as a child of the frame that sent it on another instance
            trace = event.get("trace")
            carried: dict[str, Any] = trace if isinstance(trace, dict) else {}
            with tracing.consume_span(channel, "fanout", str(event.get("kind")), carried):
                self.on_event(room, event)

    async def _resubscribe(self, channels: list[str]) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        wanted = [c for c in channels if c not in pubsub.channels]
        if wanted:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.subscribe(*wanted)
