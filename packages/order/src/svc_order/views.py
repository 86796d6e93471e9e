"""Thin handlers: the chassis has authenticated (401), loaded the caller's order (404) and
validated the request (422); a handler applies the rule (409) and returns the order, which the
chassis renders through ``OrderOut``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web

from svc_core import Conflict, NotFound, RouteTable, body, current_claims, query, resource, utcnow
from svc_order import domain
from svc_order.parts import PARTS
from svc_order.repository import Order, OrderRepository
from svc_order.schemas import OrderCreate, OrderListQuery, OrderOut, OrderUpdate

routes = RouteTable()


def _orders(request: web.Request) -> OrderRepository:
    return PARTS.of(request).orders


async def owned_order(request: web.Request) -> Order:
    """The caller's order named in the path; someone else's answers exactly like a missing one."""
    order = await _orders(request).get(
        request.match_info["order_id"], customer_id=current_claims(request).sub
    )
    if order is None:
        raise NotFound("No such order.")
    return order


EDIT_ATTEMPTS = 20  # every lost attempt means another edit won, so this bounds a burst


async def _refused(request: web.Request, ensure: Callable[[Order], None]) -> NoReturn:
    """A conditional write matched nothing: say why, reading the order as it is now.

    Either it went away (404) or another writer moved it out of the states that allow the
    change (``ensure`` raises the 409).
    """
    ensure(await owned_order(request))
    raise Conflict("The order changed meanwhile; try again.", code="order_changed")


@routes.post("/orders", body=OrderCreate, response=OrderOut, status=201)
async def create_order(request: web.Request) -> Order:
    """Create an order (status pending; total computed by the service)."""
    data = body(request)
    order = domain.new_order(
        customer_id=current_claims(request).sub,
        currency=data["currency"],
        items=data["items"],
        now=utcnow(),
    )
    return await _orders(request).insert(order)


@routes.get("/orders", query=OrderListQuery, response=OrderOut, many=True)
async def list_orders(request: web.Request) -> dict[str, Any]:
    """List the caller's orders, newest first, optionally by status."""
    q = query(request)
    return await _orders(request).page(
        customer_id=current_claims(request).sub,
        status=q["status"],
        limit=q["limit"],
        cursor=q["cursor"],
    )


@routes.get("/orders/{order_id}", load=owned_order, response=OrderOut, errors=(404,))
async def get_order(request: web.Request) -> Order:
    """One of the caller's orders."""
    order: Order = resource(request)
    return order


@routes.patch(
    "/orders/{order_id}", load=owned_order, body=OrderUpdate, response=OrderOut, errors=(404, 409)
)
async def update_order(request: web.Request) -> Order:
    """Change a pending order's items and/or currency; the total is recomputed."""
    order: Order = resource(request)
    changes = body(request)
    orders = _orders(request)
    for _attempt in range(EDIT_ATTEMPTS):
        domain.ensure_editable(order)
        updated = await orders.revise(
            order["_id"],
            customer_id=order["customer_id"],
            when=domain.EDITABLE,
            version=order["updated_at"],
            fields=domain.revision(order, changes, now=utcnow()),
        )
        if updated is not None:
            return updated
        # Another write came first: take the order as it is now and apply this edit on top
        # (an edit replaces items and currency, so the later one wins), or refuse it.
        current = await orders.get(order["_id"], customer_id=order["customer_id"])
        if current is None:
            raise NotFound("No such order.")
        order = current
    return await _refused(request, domain.ensure_editable)


@routes.post("/orders/{order_id}/cancel", load=owned_order, response=OrderOut, errors=(404, 409))
async def cancel_order(request: web.Request) -> Order:
    """Cancel a pending order."""
    order: Order = resource(request)

    def ensure(current: Order) -> None:
        domain.ensure_can(current, domain.CANCEL)

    ensure(order)
    cancelled = await _orders(request).apply(
        domain.CANCEL, order["_id"], customer_id=order["customer_id"], now=utcnow()
    )
    if cancelled is None:
        await _refused(request, ensure)
    return cancelled


@routes.delete("/orders/{order_id}", load=owned_order, status=204, errors=(404, 409))
async def delete_order(request: web.Request) -> None:
    """Delete an order that never took money (pending or cancelled)."""
    order: Order = resource(request)
    domain.ensure_deletable(order)
    deleted = await _orders(request).delete(
        order["_id"], customer_id=order["customer_id"], when=domain.DELETABLE
    )
    if not deleted:
        await _refused(request, domain.ensure_deletable)
