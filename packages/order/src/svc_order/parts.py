"""The order service's parts, built once at startup; handlers reach them through ``PARTS``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from svc_core import EventBus, Parts, keys
from svc_order.repository import OrderRepository
from svc_order.settings import OrderSettings


@dataclasses.dataclass(frozen=True)
class OrderParts:
    settings: OrderSettings
    orders: OrderRepository
    events: EventBus


async def build(app: web.Application, settings: OrderSettings) -> AsyncIterator[OrderParts]:
    orders = OrderRepository(app[keys.MONGO_DB], reads=app[keys.MONGO_READS])
    yield OrderParts(settings=settings, orders=orders, events=app[keys.EVENTS])


PARTS = Parts(build)
