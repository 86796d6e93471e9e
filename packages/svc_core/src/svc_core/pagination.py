"""Cursor pagination as api.md defines it: newest first, ties broken by id (descending), stable
while new items are added (a keyset on ``(created_at, _id)``, never an offset).

Documents must carry ``created_at`` (a datetime) and a string ``_id``; declare the index
``Index(<collection>, [(<owner field>, 1), ("created_at", -1), ("_id", -1)])``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from svc_core.clock import UTC
from svc_core.errors import ValidationFailed

SORT = [("created_at", -1), ("_id", -1)]
MAX_MILLIS = 253402300799999  # 9999-12-31T23:59:59.999Z


def encode_cursor(created_at: dt.datetime, item_id: str, scope: str = "") -> str:
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    millis = int(created_at.timestamp() * 1000)
    raw = json.dumps([scope, millis, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, scope: str = "") -> tuple[dt.datetime, str]:
    """The position a cursor names; 422 ``cursor`` for anything this list did not make.

    A cursor is only a position: every page query still carries the caller's own filter, so a
    hand-made cursor can skip items but never reveal another customer's. The ``scope`` (the
    list it came from) makes a cursor of another list an unknown cursor.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_scope, millis, item_id = json.loads(raw)
        if (
            cursor_scope != scope
            or not isinstance(millis, int)
            or isinstance(millis, bool)
            or not 0 <= millis <= MAX_MILLIS
            or not isinstance(item_id, str)
        ):
            raise ValueError(cursor)
        return dt.datetime.fromtimestamp(millis / 1000, tz=UTC), item_id
    except (ValueError, TypeError, OverflowError, OSError):
        raise ValidationFailed({"cursor": ["Unknown cursor."]}) from None


async def find_page(
    collection: Any,
    filter: dict[str, Any],
    *,
    limit: int,
    cursor: str | None,
    scope: str | None = None,
) -> dict[str, Any]:
    """One page ``{"items": [documents...], "next_cursor": ...}`` of ``collection`` matching
    ``filter`` (a route with ``many=True`` renders the items through its response schema)."""
    scope = scope if scope is not None else str(collection.name)
    query = dict(filter)
    if cursor is not None:
        created_at, item_id = decode_cursor(cursor, scope)
        after = {
            "$or": [
                {"created_at": {"$lt": created_at}},
                {"created_at": created_at, "_id": {"$lt": item_id}},
            ]
        }
        query = {"$and": [filter, after]} if filter else after
    docs = await collection.find(query).sort(SORT).limit(limit + 1).to_list(None)
    more = len(docs) > limit
    docs = docs[:limit]
    next_cursor = (
        encode_cursor(docs[-1]["created_at"], docs[-1]["_id"], scope) if more and docs else None
    )
    return {"items": docs, "next_cursor": next_cursor}
