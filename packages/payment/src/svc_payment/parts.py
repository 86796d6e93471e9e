"""The payment service's parts, built once at startup; handlers and consumers reach them through
``PARTS``. The provider is the one ``PAYMENT_PROVIDER`` names in ``providers.PROVIDERS``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from svc_core import Parts, keys
from svc_core.client import ServiceClient
from svc_payment.idempotency import Idempotency
from svc_payment.orders import OrderClient
from svc_payment.outbox import OutboxRelay
from svc_payment.payments import Payments
from svc_payment.providers import PaymentProvider, make_provider
from svc_payment.repository import IdempotencyKeys, PaymentRepository
from svc_payment.settings import PaymentSettings


@dataclasses.dataclass(frozen=True)
class PaymentParts:
    settings: PaymentSettings
    #: reads of the stored payments (the API's lists and lookups)
    repository: PaymentRepository
    #: what happens to a payment: charge, refund, undo
    payments: Payments
    idempotency: Idempotency
    orders: OrderClient
    provider: PaymentProvider
    relay: OutboxRelay


async def build(app: web.Application, settings: PaymentSettings) -> AsyncIterator[PaymentParts]:
    db = app[keys.MONGO_DB]
    repository = PaymentRepository(db, reads=app[keys.MONGO_READS])
    provider = make_provider(settings.payment_provider)
    relay = OutboxRelay(
        repository,
        app[keys.EVENTS],
        poll=settings.outbox_poll_seconds,
        enabled=settings.outbox_relay,
    )
    metrics = app[keys.METRICS]
    metrics.add_sampler("outbox", lambda: relay.sample(metrics))
    yield PaymentParts(
        settings=settings,
        repository=repository,
        payments=Payments(repository, provider, relay),
        idempotency=Idempotency(
            IdempotencyKeys(db),
            secret=settings.idempotency_secret,
            ttl=settings.idempotency_ttl_seconds,
            wait=settings.idempotency_wait_seconds,
        ),
        orders=OrderClient(ServiceClient(app[keys.HTTP], settings.order_service_url)),
        provider=provider,
        relay=relay,
    )


PARTS = Parts(build)


async def relay_context(app: web.Application) -> AsyncIterator[None]:
    """Background work: the outbox relay runs while the service does. Its first pass runs at
    once, so events left from before a restart go out."""
    relay = PARTS.of(app).relay
    relay.start()
    yield
    await relay.stop()
