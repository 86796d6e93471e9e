"""Presence: customers, each once however many sockets; changes pushed across instances; an
instance that dies without a word drops out within the entry TTL."""

from __future__ import annotations

import json
import time
from typing import Any

from svc_core import keys


async def test_one_customer_on_several_sockets_is_listed_once(
    start_chat: Any, connect: Any, new_room: Any
) -> None:
    first, second = await start_chat(), await start_chat()
    room = await new_room(first)
    a1 = await connect(first, sub="cust-a", username="anna")
    a2 = await connect(first, sub="cust-a", username="anna")
    a3 = await connect(second, sub="cust-a", username="anna")
    for peer in (a1, a2, a3):
        await peer.join(room)
    members = await a3.members(room, {"cust-a"})
    assert members == [{"id": "cust-a", "username": "anna"}]
    b = await connect(second, sub="cust-b", username="bert")
    await b.join(room)
    expected = [{"id": "cust-a", "username": "anna"}, {"id": "cust-b", "username": "bert"}]
    for peer in (a1, a2, a3, b):  # both instances agree
        assert await peer.members(room, {"cust-a", "cust-b"}) == expected
    # one of anna's sockets leaving changes nothing; bert leaving does
    await a2.send(type="leave", room_id=room)
    await a2.expect("left")
    await b.ws.close()
    for peer in (a1, a3):
        assert await peer.members(room, {"cust-a"}) == [expected[0]]


async def test_a_dead_instances_members_expire(chat: Any, connect: Any, new_room: Any) -> None:
    """An entry nobody refreshes (its instance crashed) drops out after its TTL, and the live
    instance tells its sockets on its next refresh."""
    room = await new_room(chat)
    redis = chat.app[keys.REDIS]
    ghost = json.dumps(["cust-ghost", "ghost", "dead-instance:socket-1"])
    await redis.zadd(f"chat:presence:{room}", {ghost: time.time() + 1.0})
    peer = await connect(chat, sub="cust-a")
    await peer.join(room)
    await peer.members(room, {"cust-a", "cust-ghost"})
    await peer.members(room, {"cust-a"}, timeout=4)  # TTL 1 s + refresh 0.5 s (test settings)


async def test_entries_are_refreshed_while_connected(
    start_chat: Any, connect: Any, new_room: Any
) -> None:
    chat = await start_chat(presence_ttl=1.0, presence_refresh=0.2)
    room = await new_room(chat)
    a = await connect(chat, sub="cust-a")
    await a.join(room)
    await a.members(room, {"cust-a"})
    b = await connect(chat, sub="cust-b")
    await b.join(room)
    import asyncio

    await asyncio.sleep(2.5)  # several TTLs: still listed, because refreshed
    c = await connect(chat, sub="cust-c")
    await c.join(room)
    assert await c.members(room, {"cust-a", "cust-b", "cust-c"})
