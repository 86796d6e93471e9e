"""The only module that knows the ``orders`` collection and its indexes.

Every write that depends on the order's state is one conditional update filtered on that state
(and on the owner), so the check and the write cannot be separated by another writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from pymongo import ReturnDocument

from svc_core import Index, find_page
from svc_core.mongo import Database
from svc_order.domain import Transition

COLLECTION = "orders"

INDEXES = [
    # GET /orders: the caller's orders, newest first (find_page's keyset)
    Index(COLLECTION, [("customer_id", 1), ("created_at", -1), ("_id", -1)]),
    # GET /orders?status=
    Index(COLLECTION, [("customer_id", 1), ("status", 1), ("created_at", -1), ("_id", -1)]),
]

Order = dict[str, Any]


class OrderRepository:
    def __init__(self, db: Database, *, reads: Database | None = None) -> None:
        self.orders = db[COLLECTION]
        # the list may come from a secondary (MONGO_READ_PREFERENCE); by-id reads stay on the
        # primary, so an order just written is always found
        self.listed = (reads if reads is not None else db)[COLLECTION]

    async def insert(self, order: Order) -> Order:
        await self.orders.insert_one(order)
        return order

    async def get(self, order_id: str, *, customer_id: str) -> Order | None:
        """The order if it exists and is the customer's: someone else's is simply not found."""
        return await self.orders.find_one({"_id": order_id, "customer_id": customer_id})

    async def page(
        self,
        *,
        customer_id: str,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        filter: dict[str, Any] = {"customer_id": customer_id}
        if status is not None:
            filter["status"] = status
        return await find_page(self.listed, filter, limit=limit, cursor=cursor)

    async def revise(
        self,
        order_id: str,
        *,
        customer_id: str,
        when: Collection[str],
        version: Any,
        fields: Mapping[str, Any],
    ) -> Order | None:
        """Set ``fields`` if the order is still in one of the states ``when`` and still at
        ``version`` (its ``updated_at`` when it was read); else ``None``. Checking the version
        gives every edit a version of its own, even two edits within one millisecond."""
        return await self.orders.find_one_and_update(
            {
                "_id": order_id,
                "customer_id": customer_id,
                "status": {"$in": list(when)},
                "updated_at": version,
            },
            {"$set": dict(fields)},
            return_document=ReturnDocument.AFTER,
        )

    async def apply(
        self,
        transition: Transition,
        order_id: str,
        *,
        customer_id: str,
        now: dt.datetime,
        match: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Order | None:
        """Move the order from ``transition.source`` to its target, atomically.

        ``match`` adds conditions (the amount paid must equal the total, ...); ``None`` means
        the order was not in the source state (or did not match), and nothing changed.
        """
        filter = {
            **(match or {}),
            "_id": order_id,
            "customer_id": customer_id,
            "status": transition.source.value,
        }
        update = {
            **(fields or {}),
            "status": transition.target.value,
            transition.stamp: now,
            "updated_at": now,
        }
        return await self.orders.find_one_and_update(
            filter, {"$set": update}, return_document=ReturnDocument.AFTER
        )

    async def remember_rejected_payment(self, order_id: str, payment_id: str) -> None:
        """Record a rejected payment on the order (if it still exists), so that a redelivery of
        that payment's event can never pay the order later, whatever the order has become."""
        await self.orders.update_one(
            {"_id": order_id}, {"$addToSet": {"rejected_payment_ids": payment_id}}
        )

    async def delete(self, order_id: str, *, customer_id: str, when: Collection[str]) -> bool:
        """Delete the order if it is in one of the states ``when``."""
        result = await self.orders.delete_one(
            {"_id": order_id, "customer_id": customer_id, "status": {"$in": list(when)}}
        )
        return bool(result.deleted_count)
