"""The WebSocket route and every frame type of api.md, success and failure: each error is an
``error`` frame and the socket stays open (checked by using it afterwards)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest


async def test_handshake_needs_a_valid_token(chat: Any, http: Any, make_token: Any) -> None:
    url = chat.make_url("/chat/ws")
    for kwargs in (
        {},
        {"headers": {"Authorization": "Bearer nope"}},
        {"params": {"jwt": make_token(ttl=-10)}},
        {"params": {"jwt": ""}},
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, **kwargs)
        assert refused.value.status == 401


async def test_handshake_refuses_a_revoked_session(chat: Any, http: Any, make_token: Any) -> None:
    from svc_core import keys
    from svc_core.auth import revoke_session

    app = chat.app
    await revoke_session(app[keys.REDIS], "dead-sid", until=2**31, local=app[keys.REVOCATIONS])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(chat.make_url("/chat/ws").with_query(jwt=make_token(sid="dead-sid")))
    assert refused.value.status == 401


async def test_token_in_header_or_query(chat: Any, connect: Any, new_room: Any) -> None:
    room = await new_room(chat)
    for via in ("header", "query"):
        peer = await connect(chat, via=via)
        await peer.join(room)
        await peer.post(room, f"via {via}")
        await peer.ws.close()


async def test_plain_get_is_426(chat: Any, rest: Any) -> None:
    status, problem = await rest(chat, "GET", "/chat/ws")
    assert status == 426
    assert problem["code"] == "upgrade_required"


async def test_unknown_query_parameters_are_refused(chat: Any, http: Any, make_token: Any) -> None:
    url = chat.make_url("/chat/ws").with_query(jwt=make_token(), other="1")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url)
    assert refused.value.status == 422


async def test_join_leave_and_presence(chat: Any, connect: Any, new_room: Any) -> None:
    room = await new_room(chat)
    peer = await connect(chat, sub="cust-a", username="anna")
    assert await peer.join(room) == {"type": "joined", "room_id": room}
    presence = await peer.expect("presence")
    assert presence == {"type": "presence", "room_id": room,
                        "members": [{"id": "cust-a", "username": "anna"}]}  # fmt: skip
    await peer.send(type="leave", room_id=room)
    assert await peer.expect("left") == {"type": "left", "room_id": room}
    # after leaving, nothing of the room arrives and posting is refused
    await peer.send(type="message", room_id=room, body="hi", client_id="c1")
    await peer.error("not_joined")


async def test_join_unknown_room(chat: Any, connect: Any, new_room: Any) -> None:
    peer = await connect(chat)
    await peer.send(type="join", room_id="no-such-room")
    await peer.error("unknown_room")
    room = await new_room(chat)
    await peer.join(room)  # still open


async def test_leave_a_room_not_joined(chat: Any, connect: Any, new_room: Any) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.send(type="leave", room_id=room)
    await peer.error("not_joined")
    await peer.send(type="leave", room_id="no-such-room")
    await peer.error("not_joined")


async def test_message_needs_a_joined_room(chat: Any, connect: Any, new_room: Any) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.send(type="message", room_id=room, body="hi", client_id="c1")
    await peer.error("not_joined")
    await peer.join(room)
    await peer.post(room, "now it works")


async def test_ack_comes_before_the_senders_copy_and_reaches_other_sockets(
    chat: Any, connect: Any, new_room: Any, rest: Any
) -> None:
    room = await new_room(chat)
    first = await connect(chat, sub="cust-a", username="anna")
    second = await connect(chat, sub="cust-a", username="anna")  # the sender's other socket
    other = await connect(chat, sub="cust-b")
    for peer in (first, second, other):
        await peer.join(room)
    await first.send(type="message", room_id=room, body="hello", client_id="x" * 64)
    ack = await first.expect("ack")
    assert first.backlog == []  # no copy of it came before the ack
    assert ack["client_id"] == "x" * 64
    message = ack["message"]
    assert message["body"] == "hello"
    assert message["sender_id"] == "cust-a"
    assert message["sender_username"] == "anna"
    for peer in (first, second, other):
        assert await peer.expect("message") == {"type": "message", "message": message}
    # stored: the REST history has it
    _, page = await rest(chat, "GET", f"/chat/rooms/{room}/messages")
    assert page["items"] == [message]


async def test_rest_posts_are_delivered_live(
    chat: Any, connect: Any, new_room: Any, rest: Any
) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.join(room)
    status, message = await rest(chat, "POST", f"/chat/rooms/{room}/messages", json={"body": "b"})
    assert status == 201
    assert (await peer.messages(1)) == [message]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('"join"', "bad_frame"),
        ("NaN", "bad_frame"),
        ("{}", "bad_frame"),
        ('{"type": "dance"}', "bad_frame"),
        ('{"type": 1}', "bad_frame"),
        ('{"type": "join"}', "bad_frame"),
        ('{"type": "join", "room_id": 5}', "bad_frame"),
        ('{"type": "join", "room_id": "r", "extra": 1}', "bad_frame"),
        ('{"type": "join", "room_id": "r", "last_seen_id": ""}', "bad_frame"),
        ('{"type": "leave"}', "bad_frame"),
        ('{"type": "auth"}', "bad_frame"),
        ('{"type": "auth", "token": 3}', "bad_frame"),
        ('{"type": "message", "room_id": "r", "body": "x"}', "bad_frame"),
        ('{"type": "message", "room_id": "r", "body": "", "client_id": "c"}', "bad_frame"),
        ('{"type": "message", "room_id": "r", "body": " \\n\\t ", "client_id": "c"}', "bad_frame"),
        ('{"type": "message", "room_id": "r", "body": "\\u0007", "client_id": "c"}', "bad_frame"),
        ('{"type": "message", "room_id": "r", "body": "x", "client_id": ""}', "bad_frame"),
        (json.dumps({"type": "message", "room_id": "r", "body": "x", "client_id": "c" * 65}),
         "bad_frame"),
        ('{"type": "message", "room_id": "r", "body": "\\ud800", "client_id": "c"}', "bad_frame"),
        (json.dumps({"type": "message", "room_id": "r", "body": "x" * 4001, "client_id": "c"}),
         "too_large"),
        (json.dumps({"type": "join", "room_id": "x" * 17000}), "too_large"),
        ("x" * (16 * 1024 + 1), "too_large"),
    ],
)  # fmt: skip
async def test_bad_frames_get_an_error_and_the_socket_stays_open(
    chat: Any, connect: Any, new_room: Any, frame: str, code: str
) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.join(room)
    await peer.ws.send_str(frame)
    await peer.error(code)
    await peer.post(room, "still here")


async def test_binary_frames_are_bad_frames(chat: Any, connect: Any) -> None:
    peer = await connect(chat)
    await peer.ws.send_bytes(b'{"type": "join", "room_id": "r"}')
    await peer.error("bad_frame")


async def test_limits_at_the_edge_are_accepted(chat: Any, connect: Any, new_room: Any) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.join(room)
    message = await peer.post(room, "😀" * 4000)  # 16,000 bytes of body: a frame under 16 KiB
    assert message["body"] == "😀" * 4000
    assert await peer.messages(1) == [message]
    body = "x" * 4000
    assert (await peer.post(room, body, client_id="c" * 64))["body"] == body


async def test_rate_limit_is_ten_messages_a_second(chat: Any, connect: Any, new_room: Any) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.join(room)
    for i in range(11):
        await peer.send(type="message", room_id=room, body=f"m{i}", client_id=f"c{i}")
    acks, errors = [], []
    while len(acks) + len(errors) < 11:
        frame = await peer.next()
        if frame["type"] == "ack":
            acks.append(frame["client_id"])
        elif frame["type"] == "error":
            errors.append(frame)
    # the frames are handled in order, within one second: the eleventh is refused
    assert acks == [f"c{i}" for i in range(10)]
    assert [e["code"] for e in errors] == ["rate_limited"]
    # another socket has its own budget
    other = await connect(chat)
    await other.join(room)
    await other.post(room, "mine")


async def test_join_with_last_seen_id_replays_the_gap(
    chat: Any, connect: Any, new_room: Any
) -> None:
    room = await new_room(chat)
    writer = await connect(chat, sub="cust-w")
    await writer.join(room)
    sent = [await writer.post(room, f"m{i}") for i in range(6)]
    reader = await connect(chat, sub="cust-r")
    await reader.join(room, last_seen_id=sent[2]["id"])
    assert await reader.messages(3) == sent[3:]
    live = await writer.post(room, "live")
    assert await reader.messages(1) == [live]


async def test_join_with_the_newest_id_replays_nothing(
    chat: Any, connect: Any, new_room: Any
) -> None:
    room = await new_room(chat)
    writer = await connect(chat, sub="cust-w")
    await writer.join(room)
    sent = [await writer.post(room, f"m{i}") for i in range(2)]
    reader = await connect(chat, sub="cust-r")
    await reader.join(room, last_seen_id=sent[-1]["id"])
    live = await writer.post(room, "live")
    assert await reader.messages(1) == [live]


async def test_unknown_last_seen_id_joins_live_only(chat: Any, connect: Any, new_room: Any) -> None:
    room, other_room = await new_room(chat), await new_room(chat)
    writer = await connect(chat, sub="cust-w")
    await writer.join(room)
    await writer.join(other_room)
    await writer.post(room, "before")
    elsewhere = await writer.post(other_room, "in the other room")
    reader = await connect(chat, sub="cust-r")
    for last_seen in ("no-such-message", elsewhere["id"]):
        await reader.send(type="join", room_id=room, last_seen_id=last_seen)
        await reader.error("unknown_message")
        assert await reader.expect("joined") == {"type": "joined", "room_id": room}
    live = await writer.post(room, "after")
    assert await reader.messages(1) == [live]  # "before" was not replayed


async def test_joining_twice_answers_joined_and_delivers_once(
    chat: Any, connect: Any, new_room: Any
) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.join(room)
    await peer.join(room)
    sent = await peer.post(room, "once")
    assert await peer.messages(1) == [sent]
    await peer.send(type="leave", room_id=room)
    await peer.expect("left")
    await peer.send(type="leave", room_id=room)
    await peer.error("not_joined")


async def test_auth_frame(chat: Any, connect: Any, make_token: Any, other_keys: Any) -> None:
    from svc_core.testing import mint_token

    peer = await connect(chat, sub="cust-a")
    await peer.send(type="auth", token=make_token(sub="cust-a"))
    assert await peer.expect("authed") == {"type": "authed"}
    for bad in (
        "not-a-token",
        make_token(sub="cust-b"),  # another customer's
        make_token(sub="cust-a", ttl=-5),  # expired
        mint_token(other_keys, sub="cust-a"),  # signed by a key nobody trusts
    ):
        await peer.send(type="auth", token=bad)
        await peer.error("unauthorized")
    await peer.send(type="auth", token=make_token(sub="cust-a"))
    await peer.expect("authed")
