"""The outbox relay: publishes events that were written into payment documents.

An event is stored in the same update that changes a payment's status, so a status change and
its event cannot part: if the process stops before publishing, the relay publishes on the next
start. Delivery is at least once (a crash between publishing and marking repeats the event);
consumers deduplicate by ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from svc_core import EventBus, keys
from svc_payment.repository import Payments
from svc_payment.typedefs import SETTINGS

log = logging.getLogger("svc_payment.outbox")

BATCH = 100


class OutboxRelay:
    def __init__(self, payments: Payments, bus: EventBus, *, poll: float, enabled: bool) -> None:
        self.payments = payments
        self.bus = bus
        self.poll = poll
        self.enabled = enabled
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Publish now rather than at the next poll (called right after a write)."""
        self._wake.set()

    async def drain(self) -> int:
        """Publish every pending event; the number published."""
        published = 0
        while True:
            docs = await self.payments.with_pending_events(BATCH)
            for doc in docs:
                for event in list(doc.get("outbox", [])):
                    await self.bus.publish(
                        event["stream"], event["type"], event["data"], event_id=event["event_id"]
                    )
                    await self.payments.mark_published(doc["_id"], event["event_id"])
                    published += 1
            if len(docs) < BATCH:
                return published

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or MongoDB away: keep the events, try again
                log.warning("outbox relay paused", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self.run(), name="payment-outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


RELAY: web.AppKey[OutboxRelay] = web.AppKey("payment_outbox_relay", OutboxRelay)


async def relay_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    relay = OutboxRelay(
        Payments(app[keys.MONGO_DB]),
        app[keys.EVENTS],
        poll=settings.outbox_poll_seconds,
        enabled=settings.outbox_relay,
    )
    app[RELAY] = relay
    relay.start()  # the first pass runs at once: events left from before a restart go out
    yield
    await relay.stop()
