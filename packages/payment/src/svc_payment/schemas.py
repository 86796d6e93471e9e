"""Request and response shapes. Card data exists only in ``CardIn``: no output shape has it."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from svc_core import (
    Id,
    Int,
    PageQuery,
    Pattern,
    Schema,
    Str,
    Timestamp,
    ValidationFailed,
    fields,
    utcnow,
    validate,
)
from svc_payment.domain import BRANDS, PUBLIC_STATUS, Status, card_expired, luhn_valid

ORDER_ID = validate.Length(min=1, max=128)


def _luhn(number: str) -> None:
    if not luhn_valid(number):
        raise ValidationError("Not a valid card number.")


class CardIn(Schema):
    number = Str(
        required=True,
        validate=[
            Pattern("[0-9]{12,19}", error="Must be 12 to 19 digits."),
            _luhn,
        ],
    )
    exp_month = Int(required=True, validate=validate.Range(min=1, max=12))
    exp_year = Int(
        required=True, validate=validate.Range(min=1000, max=9999, error="Must be 4 digits.")
    )
    cvc = Str(required=True, validate=Pattern("[0-9]{3,4}", error="Must be 3 or 4 digits."))


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


class PublicStatus(fields.String):
    """A stored status as a client sees it (``refunding`` shows as ``succeeded``)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else PUBLIC_STATUS[Status(value)].value


class CardOut(Schema):
    brand = fields.String(validate=validate.OneOf(BRANDS))
    last4 = fields.String()


class PaymentOut(Schema):
    """The public shape of a payment document: only these fields ever leave the service."""

    id = Id()
    order_id = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    status = PublicStatus(
        validate=validate.OneOf([s.value for s in dict.fromkeys(PUBLIC_STATUS.values())])
    )
    card = fields.Nested(CardOut)
    failure_code = fields.String(allow_none=True, dump_default=None)
    created_at = Timestamp()


#: The one instance that renders payments: the routes' responses, the stored outcome of an
#: Idempotency-Key, and the ``payment`` member of a 402.
PAYMENT_OUT = PaymentOut()
