"""Request and response shapes. Card data exists only in ``CardIn``: no output shape has it."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from svc_core import Int, PageQuery, Schema, Str, ValidationFailed, fields, utcnow, validate
from svc_payment.domain import BRANDS, card_expired, luhn_valid

ORDER_ID = validate.Length(min=1, max=128)


def _luhn(number: str) -> None:
    if not luhn_valid(number):
        raise ValidationError("Not a valid card number.")


class CardIn(Schema):
    number = Str(
        required=True,
        validate=[
            validate.Regexp(r"^[0-9]{12,19}\Z", error="Must be 12 to 19 digits."),
            _luhn,
        ],
    )
    exp_month = Int(required=True, validate=validate.Range(min=1, max=12))
    exp_year = Int(
        required=True, validate=validate.Range(min=1000, max=9999, error="Must be 4 digits.")
    )
    cvc = Str(
        required=True, validate=validate.Regexp(r"^[0-9]{3,4}\Z", error="Must be 3 or 4 digits.")
    )


def ensure_card_not_expired(card: dict[str, Any]) -> None:
    """422 for a card past the last day of its expiry month (UTC).

    Not part of ``CardIn``: the answer changes with the clock, so it runs only for a request
    that is not an idempotent replay (a replay gets its first answer, whenever it comes).
    Reported on the card as a whole: neither field is wrong on its own.
    """
    if card_expired(card["exp_month"], card["exp_year"], utcnow()):
        raise ValidationFailed({"card": ["The card has expired."]})


class PaymentCreate(Schema):
    order_id = Str(required=True, validate=ORDER_ID)
    card = fields.Nested(CardIn, required=True)


class PaymentListQuery(PageQuery):
    order_id = Str(load_default=None, validate=ORDER_ID)


class CardOut(Schema):
    brand = fields.String(validate=validate.OneOf(BRANDS))
    last4 = fields.String()


class PaymentOut(Schema):
    id = fields.String()
    order_id = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    status = fields.String(validate=validate.OneOf(("succeeded", "failed", "refunded")))
    card = fields.Nested(CardOut)
    failure_code = fields.String(allow_none=True)
    created_at = fields.String()
