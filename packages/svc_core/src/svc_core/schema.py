"""Schema building blocks with strict types.

Strict types are what stop operator injection: ``{"username": {"$ne": null}}`` fails a string
field with a 422 instead of reaching a query. Unknown fields are rejected (marshmallow's RAISE).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from svc_core.errors import ValidationFailed, flatten_errors

__all__ = [
    "MAX_LIMIT",
    "Bool",
    "Email",
    "Int",
    "PageQuery",
    "QueryInt",
    "Schema",
    "Str",
    "fields",
    "validate",
]

MAX_LIMIT = 100
DEFAULT_LIMIT = 20


class Schema(ma.Schema):
    """Base schema: unknown fields are errors, never ignored or stored."""

    class Meta:
        unknown = ma.RAISE


class Int(fields.Integer):
    """An integer that must be a JSON integer: no strings, floats or booleans."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("strict", True)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or (self.strict and not isinstance(value, int)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Bool(fields.Boolean):
    """A boolean that must be JSON ``true`` or ``false``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _valid_unicode(field: fields.Field[Any], value: str) -> str:
    try:  # JSON can carry lone surrogates ("\ud800"); no store or encoder can keep them
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise field.make_error("unicode") from None
    return value


_UNICODE_ERROR: dict[str, str | list[Any] | dict[Any, Any]] = {"unicode": "Not valid Unicode text."}


class Str(fields.String):
    """A string of valid Unicode; with ``strip=True`` surrounding white space is removed
    before validators run."""

    default_error_messages = _UNICODE_ERROR

    def __init__(self, *, strip: bool = False, **kwargs: Any) -> None:
        self.strip = strip
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        result = _valid_unicode(self, super()._deserialize(value, attr, data, **kwargs))
        return result.strip() if self.strip else result


class Email(fields.Email):
    """An email address of valid Unicode."""

    default_error_messages = _UNICODE_ERROR

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _valid_unicode(self, super()._deserialize(value, attr, data, **kwargs))


class QueryInt(fields.Integer):
    """An integer in a query string: ASCII digits only (no sign, spaces, ``_`` or other
    scripts' digits, all of which Python's ``int()`` would accept)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class PageQuery(Schema):
    """``?limit=`` (1..100, default 20) and ``?cursor=``. Extend it for filters."""

    limit = QueryInt(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=512))


def load(schema: ma.Schema, data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Run ``schema.load`` and turn its errors into a 422 with dotted paths."""
    try:
        result = schema.load(data, partial=partial)
    except ma.ValidationError as exc:
        raise ValidationFailed(flatten_errors(exc.messages)) from None
    if not isinstance(result, dict):  # many=True or post_load returning objects: not used here
        raise TypeError("schemas used for requests must load to a dict")
    return result
