"""The chat service's WebSocket metrics move with its sockets: open sockets, the fullest send
queue, and sockets cut off for being too slow (svc_ws_*)."""

from __future__ import annotations

from typing import Any

from svc_chat.parts import PARTS
from svc_core.testing import eventually, metric_value, metrics_of
from tests.chat.test_slow_consumer import StalledClient

CHAT = {"service": "chat"}


async def scrape(server: Any, http: Any) -> Any:
    async with http.get(server.make_url("/metrics")) as resp:
        assert resp.status == 200
        return metrics_of(await resp.text())


async def test_socket_gauges_and_the_slow_consumer_counter_move(
    start_chat: Any, connect: Any, new_room: Any, rest: Any, make_token: Any, http: Any
) -> None:
    chat = await start_chat(socket_queue=64)
    hub = PARTS.of(chat.app).hub
    got = await scrape(chat, http)
    assert metric_value(got, "svc_ws_connections", **CHAT) == 0.0
    assert metric_value(got, "svc_ws_send_queue_depth_max", **CHAT) == 0.0
    assert metric_value(got, "svc_ws_send_queue_limit", **CHAT) == 64.0
    assert metric_value(got, "svc_ws_slow_consumer_closes_total", **CHAT) == 0.0

    room = await new_room(chat)
    idle = await connect(chat, sub="cust-idle")  # open, in no room
    stalled = StalledClient(chat.port)
    await stalled.open(make_token(sub="cust-slow"))
    await stalled.send({"type": "join", "room_id": room})
    await eventually(lambda: len(hub.members(room)) == 1)
    slow = next(iter(hub.members(room)))
    assert metric_value(await scrape(chat, http), "svc_ws_connections", **CHAT) == 2.0

    async def post(count: int) -> None:
        for _ in range(count):
            status, _ = await rest(
                chat, "POST", f"/chat/rooms/{room}/messages", json={"body": "x" * 4000}
            )
            assert status == 201

    # fill the stalled socket's queue part way (its TCP buffers first, then the queue)
    posted = 0
    while slow.queue.qsize() < 8:
        assert posted < 2000, "the stalled socket's queue never grew"
        await post(4)
        posted += 4

    async def depth_is_reported() -> bool:
        got = await scrape(chat, http)
        depth = metric_value(got, "svc_ws_send_queue_depth_max", **CHAT)
        frames = metric_value(got, "svc_ws_send_queue_frames", **CHAT)
        return depth == slow.queue.qsize() >= 8 and frames == depth  # the idle one queues none

    await eventually(depth_is_reported)

    while not slow.closing:  # now past the queue's 64 frames: cut off with 1013
        assert posted < 5000, "the stalled client was never cut off"
        await post(8)
        posted += 8
    got = await scrape(chat, http)
    assert metric_value(got, "svc_ws_slow_consumer_closes_total", **CHAT) == 1.0

    _, code = await stalled.read_until_close()
    stalled.close()
    assert code == 1013

    async def one_left() -> bool:
        got = await scrape(chat, http)
        return metric_value(got, "svc_ws_connections", **CHAT) == 1.0

    await eventually(one_left)
    await idle.ws.close()
    got = await scrape(chat, http)
    assert metric_value(got, "svc_ws_slow_consumer_closes_total", **CHAT) == 1.0  # a counter

    async def none_left() -> bool:
        got = await scrape(chat, http)
        return metric_value(got, "svc_ws_connections", **CHAT) == 0.0

    await eventually(none_left)
