"""The order's rules: its states, the transitions between them, totals, what may change when.

The state machine lives here and only here::

    pending --pay--> paid --refund--> refunded
    pending --cancel--> cancelled

``repository.apply`` carries a transition out as one conditional update filtered on the expected
source state, so two racing transitions can never both win. Only payment events pay or refund
an order; the routes can cancel, edit and delete.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from svc_core import Conflict, new_id


class Status(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    name: str
    source: Status
    target: Status
    #: the field that records when it happened
    stamp: str


PAY = Transition("pay", Status.PENDING, Status.PAID, "paid_at")
REFUND = Transition("refund", Status.PAID, Status.REFUNDED, "refunded_at")
CANCEL = Transition("cancel", Status.PENDING, Status.CANCELLED, "cancelled_at")

#: states in which the customer may still edit the order (items, currency)
EDITABLE = frozenset({Status.PENDING})
#: states in which the customer may delete it: money has never moved
DELETABLE = frozenset({Status.PENDING, Status.CANCELLED})


class OrderNotPending(Conflict):
    code = "order_not_pending"

    def default_detail(self) -> str:
        return "The order is no longer pending."


class OrderNotDeletable(Conflict):
    code = "order_not_deletable"

    def default_detail(self) -> str:
        return "A paid or refunded order cannot be deleted."


def order_total(items: Iterable[Mapping[str, int]]) -> int:
    """Integer arithmetic only: minor units never pass through a float."""
    return sum(item["quantity"] * item["unit_price"] for item in items)


def new_order(
    *, customer_id: str, currency: str, items: list[dict[str, Any]], now: dt.datetime
) -> dict[str, Any]:
    return {
        "_id": new_id(),
        "customer_id": customer_id,
        "status": Status.PENDING.value,
        "currency": currency,
        "items": items,
        "total": order_total(items),
        "created_at": now,
        "updated_at": now,
    }


def ensure_editable(order: Mapping[str, Any]) -> None:
    if order["status"] not in EDITABLE:
        raise OrderNotPending()


def ensure_deletable(order: Mapping[str, Any]) -> None:
    if order["status"] not in DELETABLE:
        raise OrderNotDeletable()


def ensure_can(order: Mapping[str, Any], transition: Transition) -> None:
    if order["status"] != transition.source:
        raise OrderNotPending()


def revision(
    order: Mapping[str, Any], changes: Mapping[str, Any], *, now: dt.datetime
) -> dict[str, Any]:
    """The fields an edit sets: the changes, the total recomputed from the resulting items.

    ``updated_at`` always moves forward, by at least a millisecond (its stored and rendered
    precision): it is the version a payment is checked against, so an edit in the same
    millisecond as the previous write (or on an instance whose clock is behind) must still
    make a new one.
    """
    items = changes.get("items", order["items"])
    previous = order["updated_at"]
    if previous.tzinfo is None:  # PyMongo without tz_aware, mongomock: naive UTC
        previous = previous.replace(tzinfo=dt.UTC)
    updated_at = max(now, previous + dt.timedelta(milliseconds=1))
    revised: dict[str, Any] = {
        "items": items,
        "total": order_total(items),
        "updated_at": updated_at,
    }
    if "currency" in changes:
        revised["currency"] = changes["currency"]
    return revised
