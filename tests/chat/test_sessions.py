"""A socket lives as long as its session: 4001 within 1 s of expiry (unless an ``auth`` frame
renewed the token) or of a logout (revocation), on whichever instance it is."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from svc_core import keys
from svc_core.auth import revoke_session


async def test_closed_with_4001_when_the_token_expires(chat: Any, connect: Any) -> None:
    peer = await connect(chat, ttl=2)
    started = time.time()
    assert await peer.closed(timeout=5) == 4001
    assert time.time() - started < 3.5  # exp is whole seconds: at most 2 s + the 1 s bound


async def test_auth_frame_extends_the_socket_past_its_first_token(
    chat: Any, connect: Any, make_token: Any, new_room: Any
) -> None:
    room = await new_room(chat)
    peer = await connect(chat, sub="cust-a", ttl=2)
    await peer.join(room)
    await peer.send(type="auth", token=make_token(sub="cust-a", ttl=60))
    await peer.expect("authed")
    await asyncio.sleep(3)  # past the first token's exp
    await peer.post(room, "still open")


async def test_a_bad_auth_frame_keeps_the_current_token(
    chat: Any, connect: Any, make_token: Any
) -> None:
    peer = await connect(chat, sub="cust-a", ttl=2)
    await peer.send(type="auth", token=make_token(sub="cust-b", ttl=60))
    await peer.error("unauthorized")
    assert await peer.closed(timeout=5) == 4001  # the first token still rules


async def test_closed_with_4001_when_the_session_is_revoked(
    start_chat: Any, connect: Any, new_room: Any
) -> None:
    first, second = await start_chat(), await start_chat()
    room = await new_room(first)
    doomed_here = await connect(first, sub="cust-a", sid="session-1")
    doomed_there = await connect(second, sub="cust-a", sid="session-1")
    survivor = await connect(second, sub="cust-a", sid="session-2")
    for peer in (doomed_here, doomed_there, survivor):
        await peer.join(room)
    # POST /auth/logout in the customer service records the revocation like this
    redis = first.app[keys.REDIS]
    started = time.monotonic()
    await revoke_session(redis, "session-1", until=time.time() + 900)
    assert await doomed_here.closed() == 4001
    assert await doomed_there.closed() == 4001
    assert time.monotonic() - started < 1.0
    await survivor.post(room, "the other session lives on")


async def test_a_token_of_a_revoked_session_cannot_renew(
    chat: Any, connect: Any, make_token: Any
) -> None:
    peer = await connect(chat, sub="cust-a", sid="s-live")
    await revoke_session(chat.app[keys.REDIS], "s-dead", until=time.time() + 900)
    await asyncio.sleep(0.2)
    await peer.send(type="auth", token=make_token(sub="cust-a", sid="s-dead"))
    await peer.error("unauthorized")
