"""What a client may send (Create / Update / list query) and what it gets back (Public)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from svc_core import Int, PageQuery, Schema, Str, fields, to_rfc3339, validate
from svc_order.currencies import is_supported
from svc_order.domain import Status

MAX_ITEMS = 100


def _currency(value: str) -> None:
    if not is_supported(value):
        raise ma.ValidationError(
            "Not an active ISO 4217 currency code with a minor unit, in upper case (e.g. EUR)."
        )


class ItemIn(Schema):
    sku = Str(
        required=True,
        validate=validate.Regexp(
            r"[A-Za-z0-9._-]{1,64}\Z", error="1 to 64 characters of A-Z a-z 0-9 . _ -."
        ),
    )
    name = Str(required=True, validate=validate.Length(min=1, max=200))
    quantity = Int(required=True, validate=validate.Range(min=1, max=1000))
    unit_price = Int(required=True, validate=validate.Range(min=0, max=1_000_000_000))


def _items(*, required: bool) -> fields.List[Any]:
    return fields.List(
        fields.Nested(ItemIn),
        required=required,
        validate=validate.Length(min=1, max=MAX_ITEMS),
    )


class OrderCreate(Schema):
    """``status``, ``total``, ``customer_id`` and ``id`` are the service's: sending one is a 422."""

    currency = Str(required=True, validate=_currency)
    items = _items(required=True)


class OrderUpdate(Schema):
    currency = Str(validate=_currency)
    items = _items(required=False)

    @ma.validates_schema
    def at_least_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("Send at least one of items, currency.")


class OrderListQuery(PageQuery):
    status = fields.String(load_default=None, validate=validate.OneOf([s.value for s in Status]))


class ItemOut(Schema):
    sku = fields.String()
    name = fields.String()
    quantity = fields.Integer()
    unit_price = fields.Integer()


class OrderOut(Schema):
    id = fields.String()
    customer_id = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in Status]))
    currency = fields.String()
    items = fields.List(fields.Nested(ItemOut))
    total = fields.Integer()
    created_at = fields.String()
    updated_at = fields.String()


def render(order: dict[str, Any]) -> dict[str, Any]:
    """The public shape: only these fields ever leave the service."""
    return {
        "id": order["_id"],
        "customer_id": order["customer_id"],
        "status": order["status"],
        "currency": order["currency"],
        "items": [
            {
                "sku": item["sku"],
                "name": item["name"],
                "quantity": item["quantity"],
                "unit_price": item["unit_price"],
            }
            for item in order["items"]
        ],
        "total": order["total"],
        "created_at": to_rfc3339(order["created_at"]),
        "updated_at": to_rfc3339(order["updated_at"]),
    }
