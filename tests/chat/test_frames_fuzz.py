"""Fuzzing the frame handler: whatever text a client sends, the answer is a frame or an
``error`` with one of the contract's codes, never an exception; and a socket survives a
stream of hostile frames."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc_chat.frames import FrameError, parse_frame

CODES = {"bad_frame", "too_large"}
TYPES = st.sampled_from(["join", "leave", "message", "auth", "dance", "", 1, None])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
frames = st.fixed_dictionaries(
    {"type": TYPES},
    optional={
        "room_id": json_values,
        "last_seen_id": json_values,
        "body": st.text(max_size=4100) | json_values,
        "client_id": st.text(max_size=70) | json_values,
        "token": json_values,
        "extra": json_values,
    },
)


def _check(text: str) -> None:
    try:
        frame = parse_frame(text)
    except FrameError as error:
        problem = error
    else:
        problem = None
    if problem is not None:
        assert problem.code in CODES
        assert problem.detail
        return
    assert frame["type"] in {"join", "leave", "message", "auth"}
    if frame["type"] == "message":
        assert 1 <= len(frame["body"]) <= 4000
        assert not frame["body"].isspace()
        assert 1 <= len(frame["client_id"]) <= 64


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    _check(text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_frame_shaped_json(frame: dict[str, Any]) -> None:
    _check(json.dumps(frame))
    _check(json.dumps(frame, ensure_ascii=False))


@settings(max_examples=200)
@given(json_values)
def test_any_json(value: Any) -> None:
    _check(json.dumps(value))


def test_only_known_fields_pass() -> None:
    assert parse_frame('{"type": "leave", "room_id": "r"}') == {"type": "leave", "room_id": "r"}
    assert (
        parse_frame('{"type": "message", "room_id": "r", "body": "a\\n\\tb", "client_id": "c"}')[
            "body"
        ]
        == "a\n\tb"
    )


async def test_a_socket_survives_a_stream_of_hostile_frames(
    chat: Any, connect: Any, new_room: Any
) -> None:
    """Hostile frames down one real socket: each gets the answer parse_frame predicts, in
    order, and the socket is still usable at the end."""
    import random

    room = await new_room(chat)
    peer = await connect(chat)
    await peer.join(room)
    rng = random.Random(12345)
    texts = ["", "{", "[]", "null", '{"type": "join", "room_id": {"$ne": null}}', "\x00"]
    texts += [json.dumps({"type": rng.choice(["leave", "auth", "x"]), "n": i}) for i in range(30)]
    for text in texts:
        expected = None
        try:
            parse_frame(text)
        except FrameError as error:
            expected = error.code
        await peer.ws.send_str(text)
        if expected is not None:
            await peer.error(expected)
    await peer.post(room, "alive")
