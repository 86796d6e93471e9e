"""Composition: the routes, the ``orders`` indexes, and the payment-event consumer."""

from __future__ import annotations

from aiohttp import web

from svc_core import consume, event_bus_context
from svc_core import create_app as create_service
from svc_order.payment_events import CONSUMER_GROUP, PAYMENTS_STREAM, handle_payment_event
from svc_order.repository import INDEXES
from svc_order.settings import OrderSettings
from svc_order.views import routes


def create_app(settings: OrderSettings | None = None) -> web.Application:
    settings = settings or OrderSettings.from_env()
    return create_service(
        settings,
        routes,
        title="Order service",
        mongo_indexes=INDEXES,
        redis=True,
        contexts=[
            event_bus_context(),  # before the consumer: its handler publishes rejections
            consume(
                PAYMENTS_STREAM,
                CONSUMER_GROUP,
                handle_payment_event,
                consumer=settings.events_consumer or None,
                retry_after=settings.events_retry_after,
                max_attempts=settings.events_max_attempts,
            ),
        ],
    )
