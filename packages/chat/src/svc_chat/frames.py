"""Reading a client's frame: text in, a valid frame or the ``error`` code to answer with.

Pure (no I/O), so it can be fuzzed on its own: whatever text arrives, the result is a frame
or a :class:`FrameError` with one of the contract's codes, never an exception.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import marshmallow as ma

from svc_chat import domain
from svc_chat.schemas import FRAMES


@dataclasses.dataclass(frozen=True)
class FrameError(Exception):
    code: str
    detail: str


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def parse_frame(text: str) -> dict[str, Any]:
    """The frame as a dict with a known ``type``, or :class:`FrameError`."""
    if len(text) > domain.FRAME_MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > (
        domain.FRAME_MAX_BYTES
    ):
        raise FrameError("too_large", f"A frame is at most {domain.FRAME_MAX_BYTES} bytes.")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise FrameError("bad_frame", "A frame is a JSON object.") from None
    if not isinstance(data, dict):
        raise FrameError("bad_frame", "A frame is a JSON object.")
    kind = data.get("type")
    schema = FRAMES.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise FrameError("bad_frame", f"type must be one of {', '.join(sorted(FRAMES))}.")
    try:
        frame: dict[str, Any] = schema().load(data)
    except ma.ValidationError as exc:
        raise FrameError("bad_frame", _describe(exc.messages)) from None
    if kind == "message":
        body = frame["body"]
        if len(body) > domain.BODY_MAX:
            raise FrameError("too_large", f"A body is at most {domain.BODY_MAX} characters.")
        problem = domain.body_problem(body)
        if problem is not None:
            raise FrameError("bad_frame", f"body: {problem}")
    return frame


def _describe(messages: Any) -> str:
    if isinstance(messages, dict):
        parts = []
        for field, problems in sorted(messages.items(), key=lambda item: str(item[0])):
            text = problems[0] if isinstance(problems, list) and problems else problems
            parts.append(f"{field}: {text}")
        return "; ".join(parts)
    return str(messages)
