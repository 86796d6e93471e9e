"""Thin handlers: parse (schema), call :mod:`svc_payment.payments`, render."""

from __future__ import annotations

from aiohttp import web

from svc_core import NotFound, RouteTable, body, current_claims, find_page, keys, query
from svc_payment.idempotency import Idempotency, Outcome, key_from
from svc_payment.orders import fetch_order
from svc_payment.outbox import RELAY
from svc_payment.payments import pay_order, refund_payment, render
from svc_payment.providers import Card
from svc_payment.repository import IdempotencyKeys, Payments
from svc_payment.schemas import (
    PaymentCreate,
    PaymentListQuery,
    PaymentOut,
    ensure_card_not_expired,
)
from svc_payment.typedefs import PROVIDER, SETTINGS

routes = RouteTable()


@routes.post(
    "/payments",
    body=PaymentCreate,
    response=PaymentOut,
    status=201,
    errors=(400, 402, 404, 409, 422),
)
async def create_payment(request: web.Request) -> web.Response:
    """Pay an order (header Idempotency-Key required)."""
    query(request)  # takes none
    key = key_from(request)
    data = await body(request)  # structure only: types, Luhn, lengths (timeless)
    customer_id = current_claims(request).sub
    app = request.app
    settings = app[SETTINGS]
    idempotency = Idempotency(
        IdempotencyKeys(app[keys.MONGO_DB]),
        secret=settings.idempotency_secret,
        ttl=settings.idempotency_ttl_seconds,
        wait=settings.idempotency_wait_seconds,
    )

    async def charge() -> Outcome:
        # Runs only for a fresh claim of the key, so a replay is never refused because the card
        # expired since the first request. Its 422 is not stored: the claim is released.
        ensure_card_not_expired(data["card"])
        order = await fetch_order(request, data["order_id"])
        if order.customer_id != customer_id:
            raise NotFound("No such order.")
        card = Card(**data["card"])
        payment = await pay_order(
            payments=Payments(app[keys.MONGO_DB]),
            provider=app[PROVIDER],
            relay=app[RELAY],
            order=order,
            card=card,
        )
        return Outcome(201, render(payment))

    outcome = await idempotency.run_once(
        customer_id=customer_id,
        key=key,
        body=data,
        request_id=request[keys.REQUEST_ID],
        action=charge,
    )
    return outcome.response()


@routes.get("/payments", query=PaymentListQuery, response=PaymentOut, many=True)
async def list_payments(request: web.Request) -> web.Response:
    """List my payments, failed ones included."""
    q = query(request)
    payments = Payments(request.app[keys.MONGO_DB])
    page = await find_page(
        payments.collection,
        payments.page_filter(current_claims(request).sub, q["order_id"]),
        limit=q["limit"],
        cursor=q["cursor"],
        render=render,
    )
    return web.json_response(page)


@routes.get("/payments/{id}", response=PaymentOut, errors=(404,))
async def get_payment(request: web.Request) -> web.Response:
    """One of my payments."""
    payments = Payments(request.app[keys.MONGO_DB])
    doc = await payments.get_visible(request.match_info["id"], current_claims(request).sub)
    if doc is None:
        raise NotFound("No such payment.")
    query(request)  # none taken; checked after the 404 (api.md's order of checks)
    return web.json_response(render(doc))


@routes.post("/payments/{id}/refund", response=PaymentOut, errors=(404, 409))
async def refund(request: web.Request) -> web.Response:
    """Refund a succeeded payment."""
    payments = Payments(request.app[keys.MONGO_DB])
    doc = await payments.get_visible(request.match_info["id"], current_claims(request).sub)
    if doc is None:
        raise NotFound("No such payment.")
    query(request)  # none taken; checked after the 404 (api.md's order of checks)
    await body(request)  # no body: only empty or {}
    refunded = await refund_payment(
        payments=payments, provider=request.app[PROVIDER], relay=request.app[RELAY], payment=doc
    )
    return web.json_response(render(refunded))
