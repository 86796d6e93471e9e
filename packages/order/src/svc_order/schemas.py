"""What a client may send (Create / Update / list query) and what it gets back (Public)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from svc_core import Id, Int, PageQuery, Pattern, Schema, Str, Timestamp, fields, validate
from svc_order.currencies import MINOR_UNITS
from svc_order.domain import Status

MAX_ITEMS = 100


# OneOf, so /openapi.json publishes the codes as an enum
_currency = validate.OneOf(
    sorted(MINOR_UNITS),
    error="Not an active ISO 4217 currency code with a minor unit, in upper case (e.g. EUR).",
)


class ItemIn(Schema):
    sku = Str(
        required=True,
        line=True,
        validate=Pattern("[A-Za-z0-9._-]{1,64}", error="1 to 64 characters of A-Z a-z 0-9 . _ -."),
    )
    name = Str(required=True, line=True, validate=validate.Length(min=1, max=200))
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
    """The public shape: only these fields ever leave the service."""

    id = Id()
    customer_id = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in Status]))
    currency = fields.String()
    items = fields.List(fields.Nested(ItemOut))
    total = fields.Integer()
    created_at = Timestamp()
    updated_at = Timestamp()
