"""Request and response shapes of the cache routes."""

from __future__ import annotations

from svc_cache.domain import INT64_MAX, INT64_MIN, KEY_MESSAGE, MAX_TTL_SECONDS
from svc_core import Int, Pattern, Schema, Str, fields, validate


class KeyPath(Schema):
    """The entry key in the path: 1-200 of ``[A-Za-z0-9:_.-]``, not ``.`` or ``..``."""

    key = Str(
        required=True,
        validate=[
            Pattern("[A-Za-z0-9:_.-]{1,200}", error=KEY_MESSAGE),
            validate.NoneOf([".", ".."], error=KEY_MESSAGE),
        ],
    )


class EntryPut(Schema):
    """``PUT /cache/{key}``: ``value`` is required but may be null; no ttl means no expiry."""

    value = fields.Raw(required=True, allow_none=True)
    ttl_seconds = Int(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_TTL_SECONDS)
    )


class IncrBody(Schema):
    """``POST /cache/{key}/incr``."""

    by = Int(load_default=1, validate=validate.Range(min=INT64_MIN, max=INT64_MAX))


class EntryOut(Schema):
    key = fields.String(required=True)
    value = fields.Raw(required=True, allow_none=True)
    ttl_seconds = fields.Integer(required=True, allow_none=True)
