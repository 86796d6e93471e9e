"""Every REST row of api.md's Chat table, success and failure."""

from __future__ import annotations

from typing import Any

import pytest


async def test_create_room(chat: Any, rest: Any) -> None:
    status, room = await rest(chat, "POST", "/chat/rooms", json={"name": "  Tea time  "})
    assert status == 201
    assert set(room) == {"id", "name", "owner_id", "created_at"}
    assert room["name"] == "Tea time"  # trimmed
    assert room["owner_id"] == "cust-alice"
    assert room["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 5},
        {"name": "ok", "owner_id": "me"},
        {"name": "tab\there"},
        {"name": "bell\x07"},
        {"name": "trailing unit separator\x1f"},
        {"name": "next line\x85"},
        {"name": "evil\u202eitalic"},
        {"name": "isolate\u2066x"},
        {"name": "lone \ud800 surrogate"},
    ],
)
async def test_create_room_refuses_bad_names(chat: Any, rest: Any, body: Any) -> None:
    status, problem = await rest(chat, "POST", "/chat/rooms", json=body)
    assert status == 422, problem
    assert problem["code"] == "validation_failed"


async def test_room_name_limits(chat: Any, rest: Any) -> None:
    status, room = await rest(chat, "POST", "/chat/rooms", json={"name": "é" * 100})
    assert status == 201
    assert room["name"] == "é" * 100  # code points, not bytes
    status, _ = await rest(chat, "POST", "/chat/rooms", json={"name": "x"})
    assert status == 201
    # the limit counts the name once trimmed, as the published pattern says
    status, room = await rest(chat, "POST", "/chat/rooms", json={"name": f"  {'x' * 100}\u3000"})
    assert status == 201
    assert room["name"] == "x" * 100


async def test_rooms_need_a_token(chat: Any, rest: Any, make_token: Any) -> None:
    status, problem = await rest(chat, "GET", "/chat/rooms", headers={"X": "y"})
    assert status == 401
    assert problem["code"] == "unauthorized"
    # REST takes the token from the header only
    status, _ = await rest(
        chat, "GET", "/chat/rooms", headers={"X": "y"}, params={"jwt": make_token()}
    )
    assert status == 401


async def test_list_rooms_newest_first_with_cursor(chat: Any, rest: Any, new_room: Any) -> None:
    ids = [await new_room(chat, f"room {i}") for i in range(5)]
    status, page = await rest(chat, "GET", "/chat/rooms", params={"limit": "3"}, sub="cust-bob")
    assert status == 200
    assert [r["id"] for r in page["items"]] == ids[::-1][:3]  # public: bob sees alice's rooms
    status, rest_page = await rest(
        chat, "GET", "/chat/rooms", params={"limit": "3", "cursor": page["next_cursor"]}
    )
    assert status == 200
    assert [r["id"] for r in rest_page["items"]] == ids[::-1][3:]
    assert rest_page["next_cursor"] is None


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "nope"}, {"q": "1"}]
)
async def test_list_rooms_refuses_bad_queries(chat: Any, rest: Any, params: Any) -> None:
    status, problem = await rest(chat, "GET", "/chat/rooms", params=params)
    assert status == 422, problem


async def test_post_and_list_messages(chat: Any, rest: Any, new_room: Any) -> None:
    room = await new_room(chat)
    bodies = ["first", "line\nbreak\tand tab", "third"]
    posted = []
    for body in bodies:
        status, message = await rest(
            chat, "POST", f"/chat/rooms/{room}/messages", json={"body": body}, sub="cust-bob"
        )
        assert status == 201, message
        assert set(message) == {
            "id", "room_id", "sender_id", "sender_username", "body", "created_at"
        }  # fmt: skip
        assert message["room_id"] == room
        assert message["sender_id"] == "cust-bob"
        assert message["sender_username"] == "cust-bob"
        assert message["body"] == body
        posted.append(message)
    status, page = await rest(chat, "GET", f"/chat/rooms/{room}/messages", params={"limit": "2"})
    assert status == 200
    assert page["items"] == posted[::-1][:2]
    status, older = await rest(
        chat, "GET", f"/chat/rooms/{room}/messages", params={"cursor": page["next_cursor"]}
    )
    assert older == {"items": posted[:1], "next_cursor": None}


async def test_a_cursor_of_another_room_is_unknown(chat: Any, rest: Any, new_room: Any) -> None:
    first, second = await new_room(chat), await new_room(chat)
    for _ in range(2):
        await rest(chat, "POST", f"/chat/rooms/{first}/messages", json={"body": "x"})
    _, page = await rest(chat, "GET", f"/chat/rooms/{first}/messages", params={"limit": "1"})
    status, problem = await rest(
        chat, "GET", f"/chat/rooms/{second}/messages", params={"cursor": page["next_cursor"]}
    )
    assert status == 422
    assert problem["errors"] == {"cursor": ["Unknown cursor."]}


async def test_message_routes_answer_404_for_an_unknown_room(chat: Any, rest: Any) -> None:
    status, problem = await rest(chat, "GET", "/chat/rooms/nope/messages", params={"limit": "0"})
    assert status == 404  # before the 422 of the query
    assert problem["code"] == "not_found"
    status, problem = await rest(chat, "POST", "/chat/rooms/nope/messages", json={"body": ""})
    assert status == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"body": ""},
        {"body": " \n\t "},
        {"body": "x" * 4001},
        {"body": 7},
        {"body": "ok", "room_id": "r"},
        {"body": "bell\x07"},
        {"body": "cr\r\n"},
    ],
)
async def test_post_message_refuses_bad_bodies(
    chat: Any, rest: Any, new_room: Any, body: Any
) -> None:
    room = await new_room(chat)
    status, problem = await rest(chat, "POST", f"/chat/rooms/{room}/messages", json=body)
    assert status == 422, problem


async def test_body_limit_counts_code_points(chat: Any, rest: Any, new_room: Any) -> None:
    room = await new_room(chat)
    status, message = await rest(
        chat, "POST", f"/chat/rooms/{room}/messages", json={"body": "😀" * 4000}
    )
    assert status == 201
    assert message["body"] == "😀" * 4000


async def test_malformed_json_is_400(chat: Any, rest: Any, auth_header: Any) -> None:
    headers = {"Content-Type": "application/json", **auth_header()}
    status, problem = await rest(chat, "POST", "/chat/rooms", data=b"{nope", headers=headers)
    assert status == 400
    assert problem["code"] == "malformed_json"


@pytest.mark.parametrize("mode", ["primary", "primaryPreferred", "secondaryPreferred"])
async def test_room_list_and_history_read_with_the_configured_read_preference(
    start_chat: Any, rest: Any, new_room: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    from svc_chat import repository
    from svc_core.testing import record_list_reads

    seen = record_list_reads(monkeypatch, repository)
    chat = await start_chat(mongo_read_preference=mode)
    room = await new_room(chat)
    status, _ = await rest(chat, "POST", f"/chat/rooms/{room}/messages", json={"body": "hi"})
    assert status == 201
    assert seen == []  # posting reads the sequence from the primary, never through a list
    status, rooms = await rest(chat, "GET", "/chat/rooms")
    assert [r["id"] for r in rooms["items"]] == [room]
    status, history = await rest(chat, "GET", f"/chat/rooms/{room}/messages")
    assert [m["body"] for m in history["items"]] == ["hi"]
    assert seen == [mode, mode]
