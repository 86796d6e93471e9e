"""Thin handlers: find the caller's order (404), validate (422), apply the rule (409), render.

The order is looked up before the body is read, so the checks come in api.md's order:
401 (the chassis), 404, 422, 409.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from aiohttp import web

from svc_core import Conflict, NotFound, RouteTable, body, current_claims, keys, query, utcnow
from svc_order import domain
from svc_order.repository import Order, OrderRepository
from svc_order.schemas import OrderCreate, OrderListQuery, OrderOut, OrderUpdate, render

routes = RouteTable()


def _orders(request: web.Request) -> OrderRepository:
    return OrderRepository(request.app[keys.MONGO_DB])


def _order_id(request: web.Request) -> str:
    return request.match_info["order_id"]


async def _owned_order(request: web.Request) -> Order:
    """The caller's order named in the path; someone else's answers exactly like a missing one."""
    order = await _orders(request).get(_order_id(request), customer_id=current_claims(request).sub)
    if order is None:
        raise NotFound("No such order.")
    return order


EDIT_ATTEMPTS = 20  # every lost attempt means another edit won, so this bounds a burst


async def _refused(request: web.Request, ensure: Callable[[Order], None]) -> NoReturn:
    """A conditional write matched nothing: say why, reading the order as it is now.

    Either it went away (404) or another writer moved it out of the states that allow the
    change (``ensure`` raises the 409).
    """
    ensure(await _owned_order(request))
    raise Conflict("The order changed meanwhile; try again.", code="order_changed")


@routes.post("/orders", body=OrderCreate, response=OrderOut, status=201)
async def create_order(request: web.Request) -> web.Response:
    """Create an order (status pending; total computed by the service)."""
    query(request)
    data = await body(request)
    order = domain.new_order(
        customer_id=current_claims(request).sub,
        currency=data["currency"],
        items=data["items"],
        now=utcnow(),
    )
    await _orders(request).insert(order)
    return web.json_response(render(order), status=201)


@routes.get("/orders", query=OrderListQuery, response=OrderOut, many=True)
async def list_orders(request: web.Request) -> web.Response:
    """List the caller's orders, newest first, optionally by status."""
    q = query(request)
    page = await _orders(request).page(
        customer_id=current_claims(request).sub,
        status=q["status"],
        limit=q["limit"],
        cursor=q["cursor"],
        render=render,
    )
    return web.json_response(page)


@routes.get("/orders/{order_id}", response=OrderOut, errors=(404,))
async def get_order(request: web.Request) -> web.Response:
    """One of the caller's orders."""
    order = await _owned_order(request)
    query(request)
    return web.json_response(render(order))


@routes.patch("/orders/{order_id}", body=OrderUpdate, response=OrderOut, errors=(404, 409))
async def update_order(request: web.Request) -> web.Response:
    """Change a pending order's items and/or currency; the total is recomputed."""
    order = await _owned_order(request)
    query(request)
    changes = await body(request)
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
            return web.json_response(render(updated))
        # Another write came first: take the order as it is now and apply this edit on top
        # (an edit replaces items and currency, so the later one wins), or refuse it.
        current = await orders.get(order["_id"], customer_id=order["customer_id"])
        if current is None:
            raise NotFound("No such order.")
        order = current
    return await _refused(request, domain.ensure_editable)


@routes.post("/orders/{order_id}/cancel", response=OrderOut, errors=(404, 409))
async def cancel_order(request: web.Request) -> web.Response:
    """Cancel a pending order."""
    order = await _owned_order(request)
    query(request)
    await body(request)  # none: only an empty body or {}

    def ensure(current: Order) -> None:
        domain.ensure_can(current, domain.CANCEL)

    ensure(order)
    cancelled = await _orders(request).apply(
        domain.CANCEL, order["_id"], customer_id=order["customer_id"], now=utcnow()
    )
    if cancelled is None:
        await _refused(request, ensure)
    return web.json_response(render(cancelled))


@routes.delete("/orders/{order_id}", status=204, errors=(404, 409))
async def delete_order(request: web.Request) -> web.Response:
    """Delete an order that never took money (pending or cancelled)."""
    order = await _owned_order(request)
    query(request)
    await body(request)
    domain.ensure_deletable(order)
    deleted = await _orders(request).delete(
        order["_id"], customer_id=order["customer_id"], when=domain.DELETABLE
    )
    if not deleted:
        await _refused(request, domain.ensure_deletable)
    return web.Response(status=204)
