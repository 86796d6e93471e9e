"""Composition of the payment service on the chassis."""

from __future__ import annotations

from aiohttp import web

from svc_core import consume, event_bus_context
from svc_core import create_app as create_service
from svc_payment.consumers import on_order_event
from svc_payment.domain import CONSUMER_GROUP, ORDERS_STREAM
from svc_payment.outbox import relay_context
from svc_payment.providers import PaymentProvider, make_provider
from svc_payment.repository import INDEXES
from svc_payment.settings import PaymentSettings
from svc_payment.typedefs import PROVIDER, SETTINGS
from svc_payment.views import routes


def create_app(
    settings: PaymentSettings | None = None, *, provider: PaymentProvider | None = None
) -> web.Application:
    """The payment app; ``provider`` replaces the one ``PAYMENT_PROVIDER`` names (tests)."""
    settings = settings or PaymentSettings.from_env()
    app = create_service(
        settings,
        routes,
        title="payment service",
        mongo_indexes=INDEXES,
        redis=True,
        http_client=True,
        contexts=[
            event_bus_context(),
            relay_context,
            consume(ORDERS_STREAM, CONSUMER_GROUP, on_order_event),
        ],
    )
    app[SETTINGS] = settings
    app[PROVIDER] = provider or make_provider(settings.payment_provider)
    return app
