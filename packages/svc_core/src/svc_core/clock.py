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


_last = [0, 0]  # (milliseconds, sequence) of the previous id made in this process


def new_id() -> str:
    """An opaque, time-ordered id: 12 hex digits of milliseconds, a 4-digit sequence, 8 random.

    Ids made in one process increase strictly, so "newest first, ties broken by id" lists
    items in creation order even when several share a millisecond.
    """
    millis = int(time.time() * 1000)
    if millis <= _last[0]:
        millis, seq = _last[0], _last[1] + 1
        if seq > 0xFFFF:
            millis, seq = millis + 1, 0
    else:
        seq = 0
    _last[0], _last[1] = millis, seq
    return f"{millis:012x}{seq:04x}{secrets.token_hex(4)}"
