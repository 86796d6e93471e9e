"""Request and response shapes of the cache routes."""

from __future__ import annotations

from svc_cache.domain import INT64_MAX, INT64_MIN, MAX_TTL_SECONDS
from svc_core import Int, Schema, fields, validate


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
