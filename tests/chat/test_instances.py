"""Two chat instances on one Redis (and one MongoDB), as behind the gateway: every message
reaches every member exactly once, in each sender's order; a rejoin with ``last_seen_id`` on
the other instance replays exactly the gap."""

from __future__ import annotations

import asyncio
import collections
from typing import Any


async def test_every_message_reaches_every_member_once_in_each_senders_order(
    start_chat: Any, connect: Any, new_room: Any, rest: Any
) -> None:
    first, second = await start_chat(), await start_chat()
    room = await new_room(first)
    peers = {
        "a@1": await connect(first, sub="cust-a"),
        "a@2": await connect(second, sub="cust-a"),  # the same customer on the other instance
        "b@1": await connect(first, sub="cust-b"),
        "c@2": await connect(second, sub="cust-c"),
    }
    for peer in peers.values():
        await peer.join(room)
    senders = ["a@1", "a@2", "b@1", "c@2"]
    per_sender = 8

    async def send_all(name: str) -> None:
        peer = peers[name]
        for i in range(per_sender):
            await peer.send(type="message", room_id=room, body=f"{name}#{i}", client_id=f"{i}")
            await asyncio.sleep(0.11)  # under the 10 per second limit

    async def rest_sender() -> None:  # REST posts join the same order
        for i in range(per_sender):
            status, _ = await rest(
                second, "POST", f"/chat/rooms/{room}/messages", json={"body": f"rest#{i}"}
            )
            assert status == 201

    await asyncio.gather(*(send_all(name) for name in senders), rest_sender())
    total = per_sender * (len(senders) + 1)
    received: dict[str, list[str]] = {}
    for name, peer in peers.items():
        bodies = []
        acks = 0
        while len(bodies) < total:
            frame = await peer.next()
            if frame["type"] == "message":
                bodies.append(frame["message"]["body"])
            elif frame["type"] == "ack":
                acks += 1
        assert acks == per_sender
        received[name] = bodies
    everything = sorted(f"{s}#{i}" for s in [*senders, "rest"] for i in range(per_sender))
    for name, bodies in received.items():
        assert sorted(bodies) == everything, name  # each exactly once
        by_sender = collections.defaultdict(list)
        for body in bodies:
            sender, _, index = body.partition("#")
            by_sender[sender].append(int(index))
        for sender, indexes in by_sender.items():
            assert indexes == list(range(per_sender)), (name, sender)
    # and one room order, the same on both instances
    assert len({tuple(bodies) for bodies in received.values()}) == 1


async def test_rejoin_on_the_other_instance_replays_the_gap(
    start_chat: Any, connect: Any, new_room: Any
) -> None:
    first, second = await start_chat(), await start_chat()
    room = await new_room(first)
    writer = await connect(first, sub="cust-w")
    await writer.join(room)
    reader = await connect(first, sub="cust-r")
    await reader.join(room)
    seen = [await writer.post(room, f"before-{i}") for i in range(3)]
    assert await reader.messages(3) == seen
    await reader.ws.close()  # the reader's connection drops ...
    missed = [await writer.post(room, f"missed-{i}") for i in range(5)]
    back = await connect(second, sub="cust-r")  # ... and comes back through the other instance
    await back.join(room, last_seen_id=seen[-1]["id"])
    live = await writer.post(room, "live")
    assert await back.messages(6) == [*missed, live]
    after = await writer.post(room, "after")
    assert await back.messages(1) == [after]  # nothing was delivered twice


async def test_rejoin_while_messages_keep_coming_has_no_gap_and_no_duplicate(
    start_chat: Any, connect: Any, new_room: Any, rest: Any
) -> None:
    """The seam: history is replayed while other instances keep posting."""
    first, second = await start_chat(), await start_chat()
    room = await new_room(first)
    writer = await connect(first, sub="cust-w")
    await writer.join(room)
    first_message = await writer.post(room, "m0")
    stop = asyncio.Event()
    count = 1

    async def keep_posting() -> None:
        nonlocal count
        while not stop.is_set():
            status, _ = await rest(
                first, "POST", f"/chat/rooms/{room}/messages", json={"body": f"m{count}"}
            )
            assert status == 201
            count += 1

    poster = asyncio.create_task(keep_posting())
    await asyncio.sleep(0.2)
    reader = await connect(second, sub="cust-r")
    await reader.join(room, last_seen_id=first_message["id"])
    await asyncio.sleep(0.3)
    stop.set()
    await poster
    bodies = [m["body"] for m in await reader.messages(count - 1)]
    assert bodies == [f"m{i}" for i in range(1, count)]
