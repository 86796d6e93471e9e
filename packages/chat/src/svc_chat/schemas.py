"""What a client may send (REST bodies and WebSocket frames) and what it gets back."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from svc_chat import domain
from svc_core import Id, PageQuery, Schema, Str, Timestamp, fields, validate
from svc_core.schema import BIDI_CONTROLS, CONTROLS, text_pattern


class LineText(Str):
    """Single-line text people read, trimmed: control and bidi characters are refused before
    the surrounding white space is trimmed (so a trailing U+001F is an error, not trimmed);
    once trimmed it holds 1 to ``most`` code points."""

    def __init__(self, *, most: int, **kwargs: Any) -> None:
        # /openapi.json states the whole rule as one pattern: the characters (api.md "text"),
        # not only white space, and the length once trimmed (a maxLength would count the
        # white space around it)
        pattern = text_pattern(refused=CONTROLS | BIDI_CONTROLS, most=most)
        kwargs["metadata"] = {"pattern": pattern, **kwargs.get("metadata", {})}
        super().__init__(strip=False, **kwargs)
        self.most = most

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        problem = domain.line_text_problem(raw)
        if problem is not None:
            raise ma.ValidationError(problem)
        trimmed = raw.strip()
        if not 1 <= len(trimmed) <= self.most:
            raise ma.ValidationError(f"Length must be between 1 and {self.most}.")
        return trimmed


def _body(value: str) -> None:
    problem = domain.body_problem(value)
    if problem is not None:
        raise ma.ValidationError(problem)


# --- REST -----------------------------------------------------------------------------------


class RoomCreate(Schema):
    name = LineText(required=True, most=domain.ROOM_NAME_MAX)


class MessageCreate(Schema):
    # the pattern: not only white space, and no control character but line feed and tab (what
    # _body checks; bidi controls are allowed in a body, api.md "text")
    body = Str(
        required=True,
        validate=[validate.Length(min=1, max=domain.BODY_MAX), _body],
        metadata={"pattern": text_pattern(refused=CONTROLS - {0x09, 0x0A})},
    )


class RoomListQuery(PageQuery):
    pass


class MessageListQuery(PageQuery):
    pass


class RoomOut(Schema):
    id = Id()
    name = fields.String()
    owner_id = fields.String()
    created_at = Timestamp()


class MessageOut(Schema):
    id = Id()
    room_id = fields.String()
    sender_id = fields.String()
    sender_username = fields.String()
    body = fields.String()
    created_at = Timestamp()


_MESSAGE_OUT = MessageOut()


def render_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as WebSocket frames carry it: the same shape the REST routes render."""
    rendered: dict[str, Any] = _MESSAGE_OUT.dump(message)
    return rendered


# --- WebSocket frames (client to server) ----------------------------------------------------
# A frame that fails these schemas is answered with an ``error`` frame ``bad_frame``. The body's
# length is checked after the schema, so an over-long body gets its own code (``too_large``).


def _id() -> Str:
    return Str(required=True, validate=validate.Length(min=1, max=200))


class JoinFrame(Schema):
    type = Str(required=True)
    room_id = _id()
    last_seen_id = Str(validate=validate.Length(min=1, max=200))


class LeaveFrame(Schema):
    type = Str(required=True)
    room_id = _id()


class MessageFrame(Schema):
    type = Str(required=True)
    room_id = _id()
    body = Str(required=True)
    client_id = Str(required=True, validate=validate.Length(min=1, max=domain.CLIENT_ID_MAX))


class AuthFrame(Schema):
    type = Str(required=True)
    token = Str(required=True, validate=validate.Length(min=1, max=8192))


FRAMES: dict[str, type[Schema]] = {
    "join": JoinFrame,
    "leave": LeaveFrame,
    "message": MessageFrame,
    "auth": AuthFrame,
}
