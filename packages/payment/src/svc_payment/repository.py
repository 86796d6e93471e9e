"""The only module that knows the MongoDB collections and their indexes.

``payments``: one document per charge attempt. ``active: true`` marks a payment that holds its
order (``processing``, ``succeeded``, ``refunding``); a unique partial index on ``order_id`` over
those documents is what makes "one payment per order" hold under concurrency. ``outbox`` holds
events written in the same update that changed the status, until the relay has published them.

``idempotency_keys``: one document per (customer, key), claimed before the provider is called.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from svc_core import Index
from svc_core.mongo import Database
from svc_payment.domain import (
    FAILED,
    PROCESSING,
    REFUNDED,
    REFUNDING,
    SUCCEEDED,
    VISIBLE_STATUSES,
)

Doc = dict[str, Any]

INDEXES = [
    Index("payments", [("customer_id", 1), ("created_at", -1), ("_id", -1)]),
    Index(
        "payments",
        [("customer_id", 1), ("order_id", 1), ("created_at", -1), ("_id", -1)],
        name="customer_order_page",
    ),
    Index(
        "payments",
        [("order_id", 1)],
        unique=True,
        name="one_active_payment_per_order",
        partial_filter={"active": True},
    ),
    Index(
        "payments",
        [("outbox_pending", 1)],
        name="outbox_pending",
        partial_filter={"outbox_pending": True},
    ),
    Index("idempotency_keys", [("customer_id", 1), ("key", 1)], unique=True),
    Index("idempotency_keys", [("expires_at", 1)], expire_after_seconds=0),
]


class OrderAlreadyClaimed(Exception):
    """Another payment of this order is in flight or has succeeded."""


def _visible(filter: Doc) -> Doc:
    return {**filter, "status": {"$in": list(VISIBLE_STATUSES)}}


class Payments:
    def __init__(self, db: Database) -> None:
        self.collection = db.payments

    async def get(self, payment_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": payment_id})

    async def get_visible(self, payment_id: str, customer_id: str) -> Doc | None:
        return await self.collection.find_one(
            _visible({"_id": payment_id, "customer_id": customer_id})
        )

    def page_filter(self, customer_id: str, order_id: str | None) -> Doc:
        filter: Doc = {"customer_id": customer_id}
        if order_id is not None:
            filter["order_id"] = order_id
        return _visible(filter)

    async def order_is_claimed(self, order_id: str) -> bool:
        return await self.collection.find_one({"order_id": order_id, "active": True}) is not None

    async def insert_processing(self, payment: Doc) -> None:
        """Claim the order for ``payment`` before the provider is called."""
        try:
            await self.collection.insert_one({**payment, "status": PROCESSING, "active": True})
        except DuplicateKeyError:
            raise OrderAlreadyClaimed(payment["order_id"]) from None

    async def mark_succeeded(
        self, payment_id: str, *, reference: str | None, event: Doc, now: dt.datetime
    ) -> Doc:
        return await self._transition(
            {"_id": payment_id, "status": PROCESSING},
            {
                "$set": {
                    "status": SUCCEEDED,
                    "provider_ref": reference,
                    "updated_at": now,
                    "outbox_pending": True,
                },
                "$push": {"outbox": event},
            },
        )

    async def mark_failed(self, payment_id: str, *, failure_code: str, now: dt.datetime) -> Doc:
        return await self._transition(
            {"_id": payment_id, "status": PROCESSING},
            {
                "$set": {"status": FAILED, "failure_code": failure_code, "updated_at": now},
                "$unset": {"active": ""},
            },
        )

    async def begin_refund(self, payment_id: str, now: dt.datetime) -> Doc | None:
        """``succeeded`` → ``refunding`` atomically; None when the payment was not succeeded."""
        result: Doc | None = await self.collection.find_one_and_update(
            {"_id": payment_id, "status": SUCCEEDED},
            {"$set": {"status": REFUNDING, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return result

    async def abort_refund(self, payment_id: str, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": payment_id, "status": REFUNDING},
            {"$set": {"status": SUCCEEDED, "updated_at": now}},
        )

    async def finish_refund(
        self,
        payment_id: str,
        *,
        now: dt.datetime,
        event: Doc | None,
        failure_code: str | None = None,
    ) -> Doc:
        update: Doc = {
            "$set": {"status": REFUNDED, "refunded_at": now, "updated_at": now},
            "$unset": {"active": ""},
        }
        if failure_code is not None:
            update["$set"]["failure_code"] = failure_code
        if event is not None:
            update["$set"]["outbox_pending"] = True
            update["$push"] = {"outbox": event}
        return await self._transition({"_id": payment_id, "status": REFUNDING}, update)

    async def _transition(self, filter: Doc, update: Doc) -> Doc:
        doc: Doc | None = await self.collection.find_one_and_update(
            filter, update, return_document=ReturnDocument.AFTER
        )
        if doc is None:  # the status moved under us: a bug, never a client error
            raise RuntimeError(f"payment {filter['_id']} is not {filter['status']}")
        return doc

    # --- outbox ------------------------------------------------------------------------------

    async def with_pending_events(self, limit: int) -> list[Doc]:
        cursor = self.collection.find({"outbox_pending": True}, {"outbox": 1}).sort("updated_at", 1)
        docs: list[Doc] = await cursor.limit(limit).to_list(None)
        return docs

    async def mark_published(self, payment_id: str, event_id: str) -> None:
        await self.collection.update_one(
            {"_id": payment_id}, {"$pull": {"outbox": {"event_id": event_id}}}
        )
        # Cleared only when nothing is left, so an event pushed meanwhile keeps the flag.
        await self.collection.update_one(
            {"_id": payment_id, "outbox": {"$size": 0}}, {"$unset": {"outbox_pending": ""}}
        )


class IdempotencyKeys:
    def __init__(self, db: Database) -> None:
        self.collection = db.idempotency_keys

    async def claim(
        self, customer_id: str, key: str, fingerprint: str, *, now: dt.datetime, ttl: int
    ) -> bool:
        """Insert the key as in progress; False when it already exists."""
        try:
            await self.collection.insert_one(
                {
                    "customer_id": customer_id,
                    "key": key,
                    "fingerprint": fingerprint,
                    "state": "in_progress",
                    "created_at": now,
                    "expires_at": now + dt.timedelta(seconds=ttl),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, customer_id: str, key: str) -> Doc | None:
        return await self.collection.find_one({"customer_id": customer_id, "key": key})

    async def complete(self, customer_id: str, key: str, response: Doc) -> None:
        await self.collection.update_one(
            {"customer_id": customer_id, "key": key, "state": "in_progress"},
            {"$set": {"state": "completed", "response": response}},
        )

    async def release(self, customer_id: str, key: str) -> None:
        """Forget an in-progress key whose request ended without an outcome to replay."""
        await self.collection.delete_one(
            {"customer_id": customer_id, "key": key, "state": "in_progress"}
        )

    async def drop_expired(self, record_id: Any, now: dt.datetime) -> None:
        """Remove a record past its expiry that the TTL monitor has not reaped yet."""
        await self.collection.delete_one({"_id": record_id, "expires_at": {"$lte": now}})
