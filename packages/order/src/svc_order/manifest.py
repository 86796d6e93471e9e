"""What the order service is: orders and their state machine, moved by payment events."""

from __future__ import annotations

from svc_core import Auth, Consume, Events, Mongo, Service
from svc_core.contracts import PAYMENTS_STREAM
from svc_order.parts import PARTS
from svc_order.payment_events import CONSUMER_GROUP, handle_payment_event
from svc_order.repository import INDEXES
from svc_order.settings import OrderSettings
from svc_order.views import routes

service = Service(
    name="order",
    port=3003,
    settings=OrderSettings,
    routes=routes,
    uses=[
        Mongo(INDEXES),
        Auth(),
        Events(consume=[Consume(PAYMENTS_STREAM, CONSUMER_GROUP, handle_payment_event)]),
    ],
    parts=PARTS,
)
create_app = service.create_app
