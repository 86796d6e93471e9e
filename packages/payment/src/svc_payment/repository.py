"""The only module that knows the MongoDB collections and their indexes.

``payments``: one document per charge attempt. ``active: true`` marks a payment that holds its
order (``processing``, ``succeeded``, ``refunding``); a unique partial index on ``order_id`` over
those documents is what makes "one payment per order" hold under concurrency. ``outbox`` holds
events written in the same update that changed the status, until the relay has published them.

``idempotency_keys``: one document per (customer, key), claimed before the provider is called.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from svc_core import Index, find_page
from svc_core.mongo import Database
from svc_payment.domain import VISIBLE_STATUSES, Status, Transition

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


_VISIBLE = {"$in": sorted(s.value for s in VISIBLE_STATUSES)}


class PaymentRepository:
    def __init__(self, db: Database, *, reads: Database | None = None) -> None:
        self._payments = db.payments
        # the list may come from a secondary (MONGO_READ_PREFERENCE); everything else, the
        # state machine and the outbox above all, reads the primary
        self._listed = (reads if reads is not None else db).payments

    async def get(self, payment_id: str) -> Doc | None:
        return await self._payments.find_one({"_id": payment_id})

    async def get_visible(self, payment_id: str, customer_id: str) -> Doc | None:
        """The customer's payment, unless it is still ``processing`` (never shown)."""
        return await self._payments.find_one(
            {"_id": payment_id, "customer_id": customer_id, "status": _VISIBLE}
        )

    async def page(
        self, *, customer_id: str, order_id: str | None, limit: int, cursor: str | None
    ) -> Doc:
        """One page of the customer's visible payments, newest first (optionally of one order)."""
        filter: Doc = {"customer_id": customer_id}
        if order_id is not None:
            filter["order_id"] = order_id
        filter["status"] = _VISIBLE
        return await find_page(self._listed, filter, limit=limit, cursor=cursor)

    async def order_is_claimed(self, order_id: str) -> bool:
        return await self._payments.find_one({"order_id": order_id, "active": True}) is not None

    async def insert_processing(self, payment: Doc) -> None:
        """Store ``payment`` as ``processing``, claiming its order before the provider is called;
        :class:`OrderAlreadyClaimed` when another payment holds it."""
        try:
            await self._payments.insert_one(
                {**payment, "status": Status.PROCESSING.value, "active": True}
            )
        except DuplicateKeyError:
            raise OrderAlreadyClaimed(payment["order_id"]) from None

    async def apply(
        self,
        transition: Transition,
        payment_id: str,
        *,
        now: dt.datetime,
        fields: Doc | None = None,
        event: Doc | None = None,
    ) -> Doc | None:
        """Carry out ``transition`` as one conditional update: only from its source status, so
        of two racing transitions one wins. Also sets ``fields``, drops ``active`` when the
        transition frees the order, and records ``event`` in the outbox in the same write.
        The payment after it, or None when it was not in the source status."""
        set_: Doc = {**(fields or {}), "status": transition.target.value, "updated_at": now}
        if transition.stamp is not None:
            set_[transition.stamp] = now
        update: Doc = {"$set": set_}
        if transition.releases_order:
            update["$unset"] = {"active": ""}
        if event is not None:
            set_["outbox_pending"] = True
            update["$push"] = {"outbox": {**event, "at": now}}  # "at": the backlog's age
        result: Doc | None = await self._payments.find_one_and_update(
            {"_id": payment_id, "status": transition.source.value},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return result

    # --- outbox ------------------------------------------------------------------------------

    async def with_pending_events(self, limit: int) -> list[Doc]:
        cursor = self._payments.find({"outbox_pending": True}, {"outbox": 1}).sort("updated_at", 1)
        docs: list[Doc] = await cursor.limit(limit).to_list(None)
        return docs

    async def outbox_backlog(self) -> tuple[int, dt.datetime | None]:
        """How many events wait to be published, and when the oldest was written (None: none).
        One aggregation over the pending documents (the ``outbox_pending`` partial index)."""
        cursor: Any = self._payments.aggregate(
            [
                {"$match": {"outbox_pending": True}},
                {
                    "$group": {
                        "_id": None,
                        "events": {"$sum": {"$size": "$outbox"}},
                        "oldest": {"$min": {"$min": "$outbox.at"}},
                        # events written before "at" existed: their payment's last change
                        "updated": {"$min": "$updated_at"},
                    }
                },
            ]
        )
        if inspect.isawaitable(cursor):  # PyMongo's async client; the stand-in's is not
            cursor = await cursor
        found: list[Doc] = await cursor.to_list(None)
        if not found:
            return 0, None
        times = [t for t in (found[0].get("oldest"), found[0].get("updated")) if t is not None]
        oldest = min((t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in times), default=None)
        return int(found[0]["events"]), oldest

    async def mark_published(self, payment_id: str, event_id: str) -> None:
        await self._payments.update_one(
            {"_id": payment_id}, {"$pull": {"outbox": {"event_id": event_id}}}
        )
        # Cleared only when nothing is left, so an event pushed meanwhile keeps the flag.
        await self._payments.update_one(
            {"_id": payment_id, "outbox": {"$size": 0}}, {"$unset": {"outbox_pending": ""}}
        )


class IdempotencyKeys:
    def __init__(self, db: Database) -> None:
        self._keys = db.idempotency_keys

    async def claim(
        self, customer_id: str, key: str, fingerprint: str, *, now: dt.datetime, ttl: int
    ) -> bool:
        """Insert the key as in progress; False when it already exists."""
        try:
            await self._keys.insert_one(
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
        return await self._keys.find_one({"customer_id": customer_id, "key": key})

    async def complete(self, customer_id: str, key: str, response: Doc) -> None:
        await self._keys.update_one(
            {"customer_id": customer_id, "key": key, "state": "in_progress"},
            {"$set": {"state": "completed", "response": response}},
        )

    async def release(self, customer_id: str, key: str) -> None:
        """Forget an in-progress key whose request ended without an outcome to replay."""
        await self._keys.delete_one(
            {"customer_id": customer_id, "key": key, "state": "in_progress"}
        )

    async def drop_expired(self, record_id: Any, now: dt.datetime) -> None:
        """Remove a record past its expiry that the TTL monitor has not reaped yet."""
        await self._keys.delete_one({"_id": record_id, "expires_at": {"$lte": now}})
