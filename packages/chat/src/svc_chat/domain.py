"""The chat's rules: what a room name and a message body may hold, the per-socket rate limit,
and the shape of a stored message.

A message's place in its room is ``seq``: 1, 2, 3, ... with no gap, assigned when it is
stored (repository.MessageRepository.append). Everything about delivery (replay after a
``last_seen_id``, the seam with live delivery, catching up after a Redis outage) is said in
terms of ``seq``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import time
import unicodedata
from typing import Any

from svc_core import new_id
from svc_core.schema import BIDI_CONTROLS

ROOM_NAME_MAX = 100
BODY_MAX = 4000
FRAME_MAX_BYTES = 16 * 1024
CLIENT_ID_MAX = 64
MESSAGES_PER_SECOND = 10

_BIDI_CONTROLS = frozenset(map(chr, BIDI_CONTROLS))
_BODY_ALLOWED_CONTROLS = frozenset("\n\t")


def line_text_problem(value: str) -> str | None:
    """Why ``value`` cannot be single-line text people read (api.md "text"), or None."""
    for char in value:
        if unicodedata.category(char) == "Cc":
            return "Must not contain control characters."
        if char in _BIDI_CONTROLS:
            return "Must not contain bidirectional control characters."
    return None


def body_problem(value: str) -> str | None:
    """Why ``value`` cannot be a message body, or None. Length is checked separately (its own
    error code on a WebSocket: ``too_large``)."""
    if not value or value.isspace():
        return "Must not be empty or only white space."
    for char in value:
        if char not in _BODY_ALLOWED_CONTROLS and unicodedata.category(char) == "Cc":
            return "Must not contain control characters other than line feed and tab."
    return None


def new_room(*, name: str, owner_id: str, now: dt.datetime) -> dict[str, Any]:
    return {"_id": new_id(), "name": name, "owner_id": owner_id, "created_at": now}


def new_message(
    *, room_id: str, sender_id: str, sender_username: str, body: str, now: dt.datetime
) -> dict[str, Any]:
    """A message before it is stored (``seq`` is set by the repository when it is appended)."""
    return {
        "_id": new_id(),
        "room_id": room_id,
        "sender_id": sender_id,
        "sender_username": sender_username,
        "body": body,
        "created_at": now,
    }


@dataclasses.dataclass
class RateLimit:
    """At most ``limit`` events in any window of ``per`` seconds (a sliding log)."""

    limit: int = MESSAGES_PER_SECOND
    per: float = 1.0
    _times: collections.deque[float] = dataclasses.field(default_factory=collections.deque)

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] >= self.per:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True
