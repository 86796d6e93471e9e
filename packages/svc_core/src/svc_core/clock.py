"""Time and ids as api.md wants them: UTC, milliseconds, RFC 3339 with ``Z``; opaque ids."""

from __future__ import annotations

import datetime as dt
import secrets
import time

UTC = dt.UTC


def utcnow() -> dt.datetime:
    """Now in UTC, cut to milliseconds (what MongoDB stores), so a value round-trips unchanged."""
    now = dt.datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def to_rfc3339(value: dt.datetime) -> str:
    """``2026-11-25T04:15:00.123Z``. Naive datetimes (as PyMongo returns them) are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def new_id() -> str:
    """An opaque, roughly time-ordered id: 12 hex digits of milliseconds, 12 random."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"
