"""Thin handlers: the chassis has authenticated (401), loaded the caller's payment (404) and
validated the request (422); a handler calls :mod:`svc_payment.payments` and returns the payment
document, which the chassis renders through ``PaymentOut``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from svc_core import (
    NotFound,
    PaymentRequired,
    RouteTable,
    audit,
    body,
    current_claims,
    keys,
    query,
    resource,
)
from svc_payment.idempotency import key_from
from svc_payment.parts import PARTS
from svc_payment.payments import PaymentDeclined
from svc_payment.providers import Card
from svc_payment.schemas import (
    PAYMENT_OUT,
    PaymentCreate,
    PaymentListQuery,
    ensure_card_not_expired,
)

routes = RouteTable()

Doc = dict[str, Any]
CREATED = 201


async def owned_payment(request: web.Request) -> Doc:
    """The caller's payment named in the path; someone else's answers exactly like a missing
    one (and so does one still ``processing``)."""
    payment = await PARTS.of(request).repository.get_visible(
        request.match_info["id"], current_claims(request).sub
    )
    if payment is None:
        raise NotFound("No such payment.")
    return payment


def _about_payment(event: audit.Event, payment: Doc) -> None:
    event.about("payment", payment["_id"])
    event.detail["order_id"] = payment["order_id"]


@routes.post(
    "/payments",
    body=PaymentCreate,
    response=PAYMENT_OUT,
    status=CREATED,
    errors=(400, 402, 404, 409, 422),
    parameters=(
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": True,
            "description": "Replays the first outcome for 24 hours (api.md, Payment service).",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
        },
    ),
)
async def create_payment(request: web.Request) -> Doc | web.Response:
    """Pay an order (header Idempotency-Key required)."""
    key = key_from(request)
    data = body(request)  # structure only: types, Luhn, lengths (timeless)
    parts = PARTS.of(request)

    async def charge() -> Doc:
        # Runs only for a fresh claim of the key, so a replay is never refused because the card
        # expired since the first request. Its 422 is not stored: the claim is released.
        ensure_card_not_expired(data["card"])
        # One audit record per charge attempt (a replay is not one): never the card, only the
        # payment, its order and amount.
        async with audit.event(request, "payment.create") as event:
            event.about("order", data["order_id"])
            order = await parts.orders.fetch(request, data["order_id"])
            event.detail.update(amount=order.total, currency=order.currency)
            try:
                payment = await parts.payments.pay(order, Card(**data["card"]))
            except PaymentDeclined as declined:
                _about_payment(event, declined.payment)
                event.detail["failure_code"] = declined.payment.get("failure_code")
                raise PaymentRequired(
                    "The payment was not accepted.",
                    code="payment_failed",
                    extra={"payment": PAYMENT_OUT.dump(declined.payment)},
                ) from None
            _about_payment(event, payment)
            return payment

    # A replay is the stored answer as a response of its own (passed through unchanged).
    return await parts.idempotency.run_once(
        customer_id=current_claims(request).sub,
        key=key,
        body=data,
        request_id=request[keys.REQUEST_ID],
        action=charge,
        status=CREATED,
        render=PAYMENT_OUT.dump,
    )


@routes.get("/payments", query=PaymentListQuery, response=PAYMENT_OUT, many=True)
async def list_payments(request: web.Request) -> Doc:
    """List my payments, failed ones included."""
    q = query(request)
    return await PARTS.of(request).repository.page(
        customer_id=current_claims(request).sub,
        order_id=q["order_id"],
        limit=q["limit"],
        cursor=q["cursor"],
    )


@routes.get("/payments/{id}", load=owned_payment, response=PAYMENT_OUT, errors=(404,))
async def get_payment(request: web.Request) -> Doc:
    """One of my payments."""
    payment: Doc = resource(request)
    return payment


@routes.post("/payments/{id}/refund", load=owned_payment, response=PAYMENT_OUT, errors=(404, 409))
async def refund(request: web.Request) -> Doc:
    """Refund a succeeded payment."""
    payment: Doc = resource(request)
    async with audit.event(request, "payment.refund", target=("payment", payment["_id"])) as event:
        event.detail.update(
            order_id=payment["order_id"], amount=payment["amount"], currency=payment["currency"]
        )
        return await PARTS.of(request).payments.refund(payment)
