"""The seam's pieces on their own: gap filling from MongoDB, long replays in pages, the rate
limit's window, heartbeats, and an instance that stops refreshing its presence."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from svc_chat import domain
from svc_chat.hub import Delivery
from svc_chat.parts import PARTS
from svc_chat.schemas import render_message
from svc_core import utcnow
from svc_core.testing import eventually


async def _store(chat: Any, room: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    """Messages stored as another instance would, without telling this one."""
    parts = PARTS.of(chat.app)
    stored = []
    for i in range(start, start + count):
        doc = domain.new_message(
            room_id=room, sender_id="cust-x", sender_username="x", body=f"m{i}", now=utcnow()
        )
        stored.append(await parts.messages.append(doc))
    return stored


async def test_a_feed_offered_a_later_message_reads_the_gap_first(
    chat: Any, connect: Any, new_room: Any
) -> None:
    room = await new_room(chat)
    peer = await connect(chat)
    await peer.join(room)
    stored = await _store(chat, room, 4)
    last = stored[-1]
    # only the newest arrives through pub/sub: the three before it are read from MongoDB
    PARTS.of(chat.app).hub.on_event(
        room, {"kind": "message", "seq": last["seq"], "message": render_message(last)}
    )
    assert await peer.messages(4) == [render_message(m) for m in stored]
    # an old one offered again is dropped
    PARTS.of(chat.app).hub.feeds[room].offer(Delivery.stored(stored[0]))
    more = await _store(chat, room, 1, start=4)
    PARTS.of(chat.app).hub.on_event(room, {"kind": "catch_up"})
    assert await peer.messages(1) == [render_message(more[0])]


async def test_a_long_replay_comes_in_pages_without_a_gap(
    chat: Any, connect: Any, new_room: Any
) -> None:
    room = await new_room(chat)
    watcher = await connect(chat, sub="cust-w")
    await watcher.join(room)  # the room's feed exists and moves on (the watcher may be cut off)
    first = await _store(chat, room, 1)
    stored = first + await _store(chat, room, 450, start=1)
    feed = PARTS.of(chat.app).hub.feeds[room]
    PARTS.of(chat.app).hub.on_event(room, {"kind": "catch_up"})
    await eventually(lambda: feed.next_seq == 452)  # so the replay is long: pages, outside the lock
    reader = await connect(chat, sub="cust-r")
    await reader.join(room, last_seen_id=first[0]["_id"])
    got = await reader.messages(450)
    assert [m["body"] for m in got] == [f"m{i}" for i in range(1, 451)]
    assert got == [render_message(m) for m in stored[1:]]


def test_rate_limit_is_a_sliding_one_second_window() -> None:
    limit = domain.RateLimit()
    assert all(limit.allow(now=0.05 * i) for i in range(10))  # 10 within 0.45 s
    assert not limit.allow(now=0.9)
    assert not limit.allow(now=0.999)
    assert limit.allow(now=1.0)  # the first one left the window
    assert not limit.allow(now=1.01)


async def test_the_server_pings(
    start_chat: Any, http: aiohttp.ClientSession, make_token: Any
) -> None:
    chat = await start_chat(heartbeat=0.2)
    ws = await http.ws_connect(
        chat.make_url("/chat/ws").with_query(jwt=make_token()), autoping=False
    )
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.PING
    await ws.pong(message.data)
    await ws.close()


async def test_an_instance_that_stops_refreshing_drops_out(
    start_chat: Any, connect: Any, new_room: Any
) -> None:
    """As if the second instance crashed: its sockets stay, but nobody refreshes them."""
    first = await start_chat(presence_ttl=1.0, presence_refresh=0.2)
    second = await start_chat(presence_ttl=1.0, presence_refresh=0.2)
    room = await new_room(first)
    a = await connect(first, sub="cust-a")
    b = await connect(second, sub="cust-b")
    await a.join(room)
    await b.join(room)
    await a.members(room, {"cust-a", "cust-b"})
    presence = PARTS.of(second.app).presence
    assert presence._task is not None
    presence._task.cancel()  # the crash: no more refreshes, no leave
    await asyncio.sleep(0)
    await a.members(room, {"cust-a"}, timeout=5)
