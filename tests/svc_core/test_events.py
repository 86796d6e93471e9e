"""Redis Streams events: at-least-once, acked, retried, dead-lettered, resumed after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.exceptions import ResponseError

from svc_core.events import Consumer, Event, EventBus, PermanentEventError
from svc_core.redis import open_redis
from svc_core.testing import eventually

STREAM = "events:test"


@pytest.fixture
async def redis(redis_url):
    client = open_redis(redis_url)
    yield client
    await client.aclose()


def consumer(redis, handler, name: str = "c1", **kw) -> Consumer:
    kw.setdefault("retry_after", 0.05)
    kw.setdefault("block", 0.05)
    return Consumer(redis, STREAM, "group", handler, consumer=name, **kw)


async def test_published_events_are_delivered_in_order_and_acked(redis):
    bus = EventBus(redis)
    seen: list[Event] = []

    async def handle(event: Event) -> None:
        seen.append(event)

    c = consumer(redis, handle)
    for i in range(5):
        await bus.publish(STREAM, "thing.happened", {"n": i}, event_id=f"e{i}")
    c.start()
    await eventually(lambda: len(seen) == 5)
    await c.stop()
    assert [e.data["n"] for e in seen] == [0, 1, 2, 3, 4]
    assert [e.event_id for e in seen] == ["e0", "e1", "e2", "e3", "e4"]
    assert {e.type for e in seen} == {"thing.happened"}
    assert all(e.attempt == 1 for e in seen)
    pending = await redis.xpending(STREAM, "group")
    assert pending["pending"] == 0


async def test_group_created_after_publishing_still_sees_old_events(redis):
    await EventBus(redis).publish(STREAM, "early", {"x": 1})
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.type)

    c = consumer(redis, handle)
    c.start()
    await eventually(lambda: seen == ["early"])
    await c.stop()


async def test_a_failing_handler_is_retried_until_it_succeeds(redis):
    attempts: list[int] = []

    async def flaky(event: Event) -> None:
        attempts.append(event.attempt)
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    c = consumer(redis, flaky)
    await EventBus(redis).publish(STREAM, "flaky", {})
    c.start()
    await eventually(lambda: len(attempts) >= 3)
    await asyncio.sleep(0.2)  # would expose an extra delivery after success
    await c.stop()
    assert attempts == [1, 2, 3]  # failed twice, delivered a third time
    assert (await redis.xpending(STREAM, "group"))["pending"] == 0
    assert await redis.xlen(f"{STREAM}:dead") == 0


async def test_an_event_that_always_fails_is_parked(redis):
    attempts: list[int] = []

    async def broken(event: Event) -> None:
        attempts.append(event.attempt)
        raise ValueError("bad event")

    c = consumer(redis, broken, max_attempts=3)
    await EventBus(redis).publish(STREAM, "poison", {"k": "v"})
    c.start()
    await eventually(redis_has_dead_letter(redis))
    await c.stop()
    assert attempts == [1, 2, 3]
    [(_, fields)] = await redis.xrange(f"{STREAM}:dead")
    assert fields["type"] == "poison"
    assert "bad event" in fields["error"]
    assert (await redis.xpending(STREAM, "group"))["pending"] == 0


def redis_has_dead_letter(redis) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await redis.xlen(f"{STREAM}:dead") == 1

    return check


async def test_a_restarted_consumer_picks_up_where_it_stopped(redis):
    """The first consumer takes an event and dies before acking; its restart handles it."""
    bus = EventBus(redis)
    for i in range(4):
        await bus.publish(STREAM, "step", {"n": i})
    first_seen: list[int] = []
    blocked = asyncio.Event()

    async def dies_on_third(event: Event) -> None:
        if event.data["n"] == 2:
            blocked.set()
            await asyncio.sleep(3600)  # the process "crashes" here: never acks
        first_seen.append(event.data["n"])

    first = consumer(redis, dies_on_third, batch=1, retry_after=60)
    first.start()
    await asyncio.wait_for(blocked.wait(), 5)
    first._task.cancel()  # a crash, not a clean stop
    await asyncio.gather(first._task, return_exceptions=True)
    assert first_seen == [0, 1]

    second_seen: list[int] = []

    async def record(event: Event) -> None:
        second_seen.append(event.data["n"])

    # the same consumer name after a restart; retry_after is long, so only the
    # restart path (own pending entries first) can deliver event 2 this quickly
    restarted = consumer(redis, record, retry_after=60)
    restarted.start()
    await eventually(lambda: second_seen == [2, 3])
    await restarted.stop()
    assert (await redis.xpending(STREAM, "group"))["pending"] == 0


async def test_another_instance_takes_over_a_dead_consumers_entries(redis):
    await EventBus(redis).publish(STREAM, "orphan", {})

    async def never_returns(event: Event) -> None:
        await asyncio.sleep(3600)

    dead = consumer(redis, never_returns, name="dead")
    dead.start()
    await eventually(lambda: _pending_count(redis, 1))
    dead._task.cancel()
    await asyncio.gather(dead._task, return_exceptions=True)

    taken: list[Event] = []

    async def record(event: Event) -> None:
        taken.append(event)

    other = consumer(redis, record, name="other", retry_after=0.1)
    other.start()
    await eventually(lambda: len(taken) == 1)
    await other.stop()
    assert taken[0].type == "orphan"
    assert taken[0].attempt == 2


def _pending_count(redis, n: int) -> Awaitable[bool]:
    async def check() -> bool:
        try:
            return (await redis.xpending(STREAM, "group"))["pending"] == n
        except ResponseError:  # the group does not exist yet
            return False

    return check()


async def test_consumer_survives_a_malformed_entry(redis):
    await redis.xadd(STREAM, {"junk": "no type"})
    await EventBus(redis).publish(STREAM, "fine", {})
    seen: list[str] = []

    async def handle(event: Event) -> None:
        seen.append(event.type)

    c = consumer(redis, handle)
    c.start()
    await eventually(lambda: seen == ["fine"])
    await c.stop()
    assert await redis.xlen(f"{STREAM}:dead") == 1


async def test_a_permanent_error_parks_the_event_at_once(redis):
    attempts: list[int] = []

    async def refuses(event: Event) -> None:
        attempts.append(event.attempt)
        raise PermanentEventError("can never apply")

    c = consumer(redis, refuses, max_attempts=5)
    await EventBus(redis).publish(STREAM, "hopeless", {})
    c.start()
    await eventually(redis_has_dead_letter(redis))
    await c.stop()
    assert attempts == [1]
    assert (await redis.xpending(STREAM, "group"))["pending"] == 0


async def test_stop_lets_the_event_in_hand_finish(redis):
    started, finished = asyncio.Event(), []

    async def slow(event: Event) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(event.type)

    c = consumer(redis, slow)
    await EventBus(redis).publish(STREAM, "in-hand", {})
    c.start()
    await asyncio.wait_for(started.wait(), 5)
    await c.stop()
    assert finished == ["in-hand"]
    assert (await redis.xpending(STREAM, "group"))["pending"] == 0  # handled and acked
