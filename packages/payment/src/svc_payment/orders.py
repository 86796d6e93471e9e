"""Reads an order through the order service's API (never its database), as the caller."""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote

from aiohttp import web

from svc_core import DependencyUnavailable, NotFound, current_claims
from svc_core.client import ServiceClient

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

    @property
    def payable(self) -> bool:
        """Only a pending order takes a payment."""
        return self.status == "pending"


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


class OrderClient:
    """The order service, reached through one pooled client built at startup."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def fetch(self, request: web.Request, order_id: str) -> Order:
        """The caller's order, read with the caller's token and request id; 404 when it does not
        exist or is someone else's, 503 when the order service cannot give a sound answer."""
        path = f"/orders/{quote(order_id, safe='')}"
        response = await self.client.request("GET", path, request=request)
        if response.status == 404:
            raise NotFound("No such order.")
        if response.status != 200:
            log.warning("order service answered %s", response.status)
            raise DependencyUnavailable("The order service could not answer.")
        try:
            order = _parse(response.json())
        except ValueError as exc:
            log.warning("order service sent an unexpected order", extra={"error": str(exc)})
            raise DependencyUnavailable("The order service could not answer.") from None
        if order.customer_id != current_claims(request).sub:
            raise NotFound("No such order.")
        return order
