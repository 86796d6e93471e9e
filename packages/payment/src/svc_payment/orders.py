"""Reads an order through the order service's API (never its database), as the caller."""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote

from aiohttp import web

from svc_core import DependencyUnavailable, NotFound, keys
from svc_core.client import ServiceClient
from svc_payment.typedefs import SETTINGS

log = logging.getLogger("svc_payment.orders")


@dataclasses.dataclass(frozen=True, slots=True)
class Order:
    id: str
    customer_id: str
    status: str
    total: int
    currency: str
    #: the order's ``updated_at`` exactly as the order service rendered it; sent back in
    #: ``payment.succeeded`` so the order service can tell whether the order changed since
    updated_at: str


def _parse(payload: object) -> Order:
    if not isinstance(payload, dict):
        raise ValueError("order is not an object")
    total = payload.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ValueError("order total is not a non-negative integer")
    values = {
        name: payload.get(name)
        for name in ("id", "customer_id", "status", "currency", "updated_at")
    }
    if not all(isinstance(value, str) for value in values.values()):
        raise ValueError("order is missing a string field")
    return Order(total=total, **values)  # type: ignore[arg-type]


async def fetch_order(request: web.Request, order_id: str) -> Order:
    """The caller's order; 404 when it does not exist or is someone else's."""
    client = ServiceClient(request.app[keys.HTTP], request.app[SETTINGS].order_service_url)
    response = await client.request("GET", f"/orders/{quote(order_id, safe='')}", request=request)
    if response.status == 404:
        raise NotFound("No such order.")
    if response.status != 200:
        log.warning("order service answered %s", response.status)
        raise DependencyUnavailable("The order service could not answer.")
    try:
        return _parse(response.json())
    except ValueError as exc:
        log.warning("order service sent an unexpected order", extra={"error": str(exc)})
        raise DependencyUnavailable("The order service could not answer.") from None
