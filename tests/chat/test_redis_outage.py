"""Redis restarted mid-conversation (a redis-server of this test's own, never the shared one):
local delivery goes on, REST that needs Redis answers 503, /ready says so, and once Redis is
back delivery resumes, the missed messages included, without restarting anything."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from svc_core.embedded import RedisServer
from svc_core.testing import eventually, seed_revocation_epoch


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server is not on the PATH")
    server = RedisServer().start()
    seed_revocation_epoch(server.url)  # a test minting a token at a second's end failed 401
    try:
        yield server
    finally:
        server.stop()


async def _ready(http: Any, server: Any) -> tuple[int, Any]:
    async with http.get(server.make_url("/ready")) as response:
        return response.status, await response.json()


def _save(server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    try:
        client.save()  # what AOF/RDB persistence keeps across a restart in production
    finally:
        client.close()


async def test_redis_restart_mid_conversation(
    own_redis: RedisServer, start_chat: Any, connect: Any, new_room: Any, rest: Any, http: Any
) -> None:
    """A restart that keeps Redis' data (production runs it with AOF): the sockets stay open,
    delivery resumes and the gap is recovered. (An empty restart fails closed: next test.)"""
    first = await start_chat(redis_url=own_redis.url)
    second = await start_chat(redis_url=own_redis.url)
    room = await new_room(first)
    alice = await connect(first, sub="cust-a")  # posts, on the first instance
    carol = await connect(first, sub="cust-c")  # reads, on the same instance
    bob = await connect(second, sub="cust-b")  # reads, on the other instance
    for peer in (alice, carol, bob):
        await peer.join(room)
    await eventually(lambda: _both_ready(http, first, second), timeout=10)
    before = await alice.post(room, "before")
    for peer in (alice, carol, bob):
        assert await peer.messages(1) == [before]

    await asyncio.get_running_loop().run_in_executor(None, _save, own_redis)
    await asyncio.get_running_loop().run_in_executor(None, own_redis.stop)
    status, problem = await rest(first, "POST", "/chat/rooms", json={"name": "x"})
    assert status == 503
    assert problem["code"] == "dependency_unavailable"
    status, report = await _ready(http, first)
    assert status == 503
    assert report["checks"]["redis"] != "ok"
    during = [await alice.post(room, f"during-{i}") for i in range(3)]
    for peer in (alice, carol):  # local delivery goes on
        assert await peer.messages(3) == during

    restarted = RedisServer(port=own_redis.port, data_dir=own_redis.data_dir)
    await asyncio.get_running_loop().run_in_executor(None, restarted.start)
    try:
        # bob gets what he missed as soon as his instance is subscribed again ...
        assert await bob.messages(3, timeout=10) == during
        after = await alice.post(room, "after")
        for peer in (alice, carol, bob):
            assert await peer.messages(1) == [after]
        # ... and a client that was away recovers the outage with last_seen_id
        dave = await connect(second, sub="cust-d")
        await dave.join(room, last_seen_id=before["id"])
        assert await dave.messages(4) == [*during, after]
        await eventually(lambda: _both_ready(http, first, second), timeout=10)
        status, _ = await rest(first, "POST", "/chat/rooms", json={"name": "back"})
        assert status == 201
    finally:
        await asyncio.get_running_loop().run_in_executor(None, restarted.stop)


async def test_an_empty_redis_restart_closes_sockets_of_earlier_tokens(
    own_redis: RedisServer, start_chat: Any, connect: Any, new_room: Any, http: Any
) -> None:
    """Redis came back empty, so revocations may have been lost: tokens issued before the loss
    are refused (api.md, logout) and their sockets are closed with 4001, on both instances."""
    first = await start_chat(redis_url=own_redis.url)
    second = await start_chat(redis_url=own_redis.url)
    room = await new_room(first)
    alice = await connect(first, sub="cust-a")
    bob = await connect(second, sub="cust-b")
    for peer in (alice, bob):
        await peer.join(room)
    await asyncio.get_running_loop().run_in_executor(None, own_redis.stop)
    emptied = RedisServer(port=own_redis.port)  # a new, empty data directory
    await asyncio.get_running_loop().run_in_executor(None, emptied.start)
    try:
        assert await alice.closed(timeout=10) == 4001
        assert await bob.closed(timeout=10) == 4001
    finally:
        await asyncio.get_running_loop().run_in_executor(None, emptied.stop)


async def _both_ready(http: Any, *servers: Any) -> bool:
    for server in servers:
        status, report = await _ready(http, server)
        if status != 200:
            return False
        assert report["checks"] == {"mongodb": "ok", "redis": "ok", "fanout": "ok"}
    return True


async def test_expiry_closes_sockets_while_redis_is_down(
    own_redis: RedisServer, start_chat: Any, connect: Any
) -> None:
    import time

    chat = await start_chat(redis_url=own_redis.url)
    peer = await connect(chat, ttl=3)
    await asyncio.get_running_loop().run_in_executor(None, own_redis.stop)
    started = time.time()
    assert await peer.closed(timeout=8) == 4001
    assert time.time() - started < 4.5  # exp (whole seconds, at most 3 s away) + the 1 s bound


async def test_a_publish_that_failed_while_subscribed_is_announced_once_redis_takes_it(
    own_redis: RedisServer,
) -> None:
    """A publish can fail while the instance's own subscription stays up (CI saw a pooled
    connection gone stale in a Redis restart): the other instances must still be told to catch
    the room up, as soon as Redis takes a publish again, not at the next reconnection."""
    from redis.asyncio import Redis

    from svc_chat.fanout import Fanout, room_channel

    admin = Redis.from_url(own_redis.url)
    # a user that may not publish to any channel yet: Redis refuses the publish (NOPERM)
    await admin.execute_command("ACL", "SETUSER", "poster", "on", "nopass", "+@all", "~*")
    await admin.execute_command("ACL", "SETUSER", "poster", "resetchannels")
    poster = Redis.from_url(f"redis://poster:x@127.0.0.1:{own_redis.port}")
    fanout = Fanout(poster, on_event=lambda *_: None, on_subscribed=lambda _: None)
    fanout.backoff = (0.01, 0.05)
    listener = admin.pubsub()
    await listener.subscribe(room_channel("r1"))
    try:
        assert await fanout.publish("r1", {"kind": "message"}) is False
        await admin.execute_command("ACL", "SETUSER", "poster", "allchannels")

        async def announced() -> Any:
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.1)
            return message and json.loads(message["data"])

        assert await eventually(announced, timeout=10) == {"kind": "catch_up"}
    finally:
        await fanout.stop()
        await listener.aclose()
        await poster.aclose()
        await admin.aclose()
