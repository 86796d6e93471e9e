"""What the payment service is: idempotent payments of orders behind a provider interface,
published through an outbox, refunded when the order service rejects them; every charge and
refund is audited."""

from __future__ import annotations

from svc_core import Audit, Auth, Consume, Events, Mongo, Service
from svc_core.contracts import ORDERS_STREAM
from svc_payment.consumers import CONSUMER_GROUP, on_order_event
from svc_payment.parts import PARTS, relay_context
from svc_payment.repository import INDEXES
from svc_payment.settings import PaymentSettings
from svc_payment.views import routes

service = Service(
    name="payment",
    port=3004,
    settings=PaymentSettings,
    routes=routes,
    uses=[
        Mongo(INDEXES),
        Auth(),
        Events(consume=[Consume(ORDERS_STREAM, CONSUMER_GROUP, on_order_event)]),
        Audit(),
    ],
    parts=PARTS,
    background=[relay_context],
    calls={"order": "order_service_url"},
)
create_app = service.create_app
