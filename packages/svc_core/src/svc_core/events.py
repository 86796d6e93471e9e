"""Events on Redis Streams with consumer groups: at-least-once, acknowledged, retried.

Publishing appends ``{type, event_id, data}`` to a stream. A :class:`Consumer` reads it in a
consumer group:

- an entry is acknowledged only after its handler returns, so a crash redelivers it;
- a handler that raises leaves the entry pending; it is claimed again once it has been idle for
  ``retry_after`` seconds (by this consumer or any other in the group);
- after ``max_attempts`` deliveries that all failed it is copied to ``<stream>:dead`` and acked
  (at once if the handler raises :class:`PermanentEventError`);
- a consumer that restarts first re-reads its own pending entries, then continues with new ones,
  and the group is created at the start of the stream, so nothing published before the first
  consumer existed is missed.

Delivery is at least once: handlers must tolerate duplicates (``event_id`` identifies one).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from svc_core import tracing

log = logging.getLogger("svc_core.events")


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    stream: str
    entry_id: str
    type: str
    event_id: str
    data: dict[str, Any]
    attempt: int


Handler = Callable[[Event], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Backlog:
    """How far a consumer group is behind on its stream (:meth:`Consumer.backlog`)."""

    #: entries delivered to the group and not acknowledged yet (being handled, or failing)
    pending: int
    #: entries not delivered to the group yet (None: Redis cannot tell, e.g. after a trim)
    lag: int | None
    #: seconds since the oldest entry the group has not finished was published (0: none)
    oldest_age: float
    #: entries in the stream's dead-letter stream (``<stream>:dead``), every group's
    dead_letters: int


def entry_ms(entry_id: str) -> int:
    """The publication time of a stream entry, in Unix milliseconds (its id's first part)."""
    return int(str(entry_id).partition("-")[0])


class PermanentEventError(Exception):
    """Raised by a handler for an event that can never succeed: it is parked at once."""


class EventBus:
    """Publishes events. ``maxlen`` trims each stream approximately, so streams stay bounded."""

    def __init__(self, redis: Redis, *, maxlen: int = 100_000) -> None:
        self.redis = redis
        self.maxlen = maxlen

    async def publish(
        self,
        stream: str,
        type: str,
        data: dict[str, Any],
        *,
        event_id: str | None = None,
        trace: Mapping[str, str] | None = None,
    ) -> str:
        """Append an event; with tracing on, its entry carries ``traceparent`` (``trace``: a
        context saved earlier, :func:`svc_core.tracing.carrier`, e.g. by an outbox)."""
        fields: dict[Any, Any] = {
            "type": type,
            "event_id": event_id or uuid.uuid4().hex,
            "data": json.dumps(data, separators=(",", ":")),
        }
        with tracing.publish_span(stream, type, fields, trace):
            entry_id = await self.redis.xadd(stream, fields, maxlen=self.maxlen, approximate=True)
        return str(entry_id)


def default_consumer_name(service: str) -> str:
    """Stable across restarts of one instance, distinct between instances."""
    return f"{service}-{socket.gethostname()}"


class Consumer:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        handler: Handler,
        *,
        consumer: str,
        max_attempts: int = 5,
        retry_after: float = 1.0,
        block: float = 0.5,
        batch: int = 32,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.handler = handler
        self.consumer = consumer
        self.max_attempts = max_attempts
        self.retry_after = retry_after
        self.block = block
        self.batch = batch
        self.dead_letter = f"{stream}:dead"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._handling = False
        self._group_ready = False
        self._replayed_own = False
        #: events this consumer copied to the dead-letter stream since it was made
        self.dead_lettered = 0

    async def backlog(self) -> Backlog:
        """The group's backlog, read with at most four cheap commands (XINFO GROUPS, XPENDING
        summary, one XRANGE entry, XLEN): what the metrics report on each scrape."""
        dead_letters = int(await self.redis.xlen(self.dead_letter))
        try:
            groups: Any = await self.redis.xinfo_groups(self.stream)
        except ResponseError as exc:
            if "no such key" not in str(exc):
                raise
            # no stream yet: before the consumer's first read, or after Redis lost its data
            # (the consumer creates its group again on its next read): nothing behind
            return Backlog(0, 0, 0.0, dead_letters)
        info = next((g for g in groups if str(g["name"]) == self.group), None)
        if info is None:  # the group is created when the consumer first reads
            return Backlog(0, None, 0.0, dead_letters)
        pending = int(info["pending"])
        lag = None if info.get("lag") is None else int(info["lag"])
        oldest: list[int] = []
        if pending:
            summary: Any = await self.redis.xpending(self.stream, self.group)
            if summary.get("min"):
                oldest.append(entry_ms(summary["min"]))
        if lag is None or lag > 0:  # the first entry after the last one delivered
            after = str(info["last-delivered-id"])
            following: Any = await self.redis.xrange(self.stream, min=f"({after}", count=1)
            if following:
                oldest.append(entry_ms(following[0][0]))
        age = max(0.0, time.time() - min(oldest) / 1000) if oldest else 0.0
        return Backlog(pending, lag, age, dead_letters)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def process_once(self) -> int:
        """Handle what is due now: own pending (after a restart), retries, then new entries."""
        if not self._group_ready:
            await self.ensure_group()
        handled = 0
        if not self._replayed_own:
            # Our own pending entries from before a restart: ones we read but never acked.
            own: Any = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=self.batch
            )
            entries = own[0][1] if own else []
            for entry_id, fields in entries:
                handled += await self._handle(entry_id, fields)
            if len(entries) < self.batch:
                self._replayed_own = True
            return handled
        claimed: Any = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=int(self.retry_after * 1000),
            start_id="0-0",
            count=self.batch,
        )
        for entry_id, fields in claimed[1]:
            handled += await self._handle(entry_id, fields)
        fresh: Any = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.batch,
            block=int(self.block * 1000) if not handled else None,
        )
        for _stream, entries in fresh or []:
            for entry_id, fields in entries:
                handled += await self._handle(entry_id, fields, first=True)
        return handled

    async def _attempts(self, entry_id: str) -> int:
        pending: Any = await self.redis.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _handle(self, entry_id: str, fields: Any, *, first: bool = False) -> int:
        if not fields:  # trimmed away while pending: nothing left to deliver
            await self.redis.xack(self.stream, self.group, entry_id)
            return 0
        attempt = 1 if first else await self._attempts(entry_id)
        try:
            event = Event(
                stream=self.stream,
                entry_id=str(entry_id),
                type=str(fields["type"]),
                event_id=str(fields.get("event_id", entry_id)),
                data=json.loads(fields["data"]),
                attempt=attempt,
            )
        except (KeyError, ValueError, TypeError):
            log.error("malformed event parked", extra={"stream": self.stream, "entry": entry_id})
            await self._park(entry_id, fields, "malformed")
            return 1
        self._handling = True
        try:
            with tracing.consume_span(self.stream, self.group, event.type, fields):
                return await self._deliver(entry_id, fields, event)
        finally:
            self._handling = False

    async def _deliver(self, entry_id: str, fields: Any, event: Event) -> int:
        try:
            await self.handler(event)
        except asyncio.CancelledError:
            raise
        except PermanentEventError as exc:
            log.error("event parked", extra={"stream": self.stream, "type": event.type})
            await self._park(entry_id, fields, repr(exc))
            return 1
        except Exception as exc:
            attempt = event.attempt
            if attempt >= self.max_attempts:
                log.error(
                    "event parked after repeated failures",
                    extra={"stream": self.stream, "type": event.type, "attempts": attempt},
                )
                await self._park(entry_id, fields, repr(exc))
            else:
                log.warning(
                    "event handler failed; will retry",
                    extra={"stream": self.stream, "type": event.type, "attempt": attempt},
                    exc_info=True,
                )
            return 1
        await self.redis.xack(self.stream, self.group, entry_id)
        return 1

    async def _park(self, entry_id: str, fields: Any, error: str) -> None:
        parked = dict(fields)
        parked.update({"error": error[:500], "group": self.group, "origin_id": str(entry_id)})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter, parked, maxlen=100_000, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()
        self.dead_lettered += 1

    async def run(self) -> None:
        while not self._stopping:
            try:
                handled = await self.process_once()
                if not handled and self._replayed_own:
                    await asyncio.sleep(0)  # the blocking read already waited
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if "NOGROUP" in str(exc):
                    self._group_ready = False
                log.warning("event consumer paused", extra={"error": type(exc).__name__})
                await asyncio.sleep(min(self.retry_after, 1.0))
            except Exception:
                log.exception("event consumer error")
                await asyncio.sleep(min(self.retry_after, 1.0))

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name=f"consumer-{self.stream}")

    async def stop(self, grace: float = 10.0) -> None:
        """Let the entry in hand finish (up to ``grace`` seconds), then stop.

        A blocking read is simply cancelled: redis-py drops a connection interrupted mid-command,
        and an entry read but not yet handled stays pending, to be redelivered after a restart.
        """
        self._stopping = True
        if self._task is None:
            return
        deadline = asyncio.get_running_loop().time() + grace
        while self._handling and not self._task.done():
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
