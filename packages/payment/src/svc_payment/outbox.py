"""The outbox relay: publishes events that were written into payment documents.

An event is stored in the same update that changes a payment's status, so a status change and
its event cannot part: if the process stops before publishing, the relay publishes on the next
start. Delivery is at least once (a crash between publishing and marking repeats the event);
consumers deduplicate by ``event_id``.

The relay is one of the service's parts (built once, :mod:`svc_payment.parts`); the manifest's
background work starts it after the parts are built and stops it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from svc_core import EventBus, utcnow
from svc_core.metrics import Family, Metrics
from svc_payment.repository import PaymentRepository

log = logging.getLogger("svc_payment.outbox")

BATCH = 100


class OutboxRelay:
    def __init__(
        self, payments: PaymentRepository, bus: EventBus, *, poll: float, enabled: bool
    ) -> None:
        self.payments = payments
        self.bus = bus
        self.poll = poll
        self.enabled = enabled
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: events this instance's relay published since it started
        self.published = 0

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
                        event["stream"],
                        event["type"],
                        event["data"],
                        event_id=event["event_id"],
                        trace=event.get("trace"),  # the trace of the request that wrote it
                    )
                    await self.payments.mark_published(doc["_id"], event["event_id"])
                    published += 1
                    self.published += 1
            if len(docs) < BATCH:
                return published

    async def sample(self, metrics: Metrics) -> list[Family]:
        """The outbox as metrics, on each scrape: the backlog (every instance reports the same
        numbers: dashboards take the ``max``) and what this instance published."""
        events, oldest = await self.payments.outbox_backlog()
        age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
        return [
            metrics.gauge("svc_outbox_pending_events", "Events written, not published yet.").add(
                events
            ),
            metrics.gauge(
                "svc_outbox_oldest_age_seconds",
                "Age of the oldest event not published yet; 0: none.",
            ).add(age),
            metrics.counter("svc_outbox_published", "Events this instance's relay published.").add(
                self.published
            ),
        ]

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
