"""Shutdown (SIGTERM runs the same runner cleanup): no new sockets, what is queued is sent,
then every socket is closed with 1001."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from svc_chat.parts import PARTS


async def test_shutdown_flushes_and_closes_every_socket_with_1001(
    chat: Any, connect: Any, new_room: Any, rest: Any, http: Any, make_token: Any
) -> None:
    room = await new_room(chat)
    peers = [await connect(chat, sub=f"cust-{i}") for i in range(3)]
    for peer in peers:
        await peer.join(room)
    sent = []
    for i in range(5):
        _, message = await rest(chat, "POST", f"/chat/rooms/{room}/messages", json={"body": f"{i}"})
        sent.append(message)
    url = chat.make_url("/chat/ws")

    async def read(peer: Any) -> tuple[list[Any], int | None]:
        return await peer.messages(5), await peer.closed()

    readers = [asyncio.create_task(read(peer)) for peer in peers]
    await chat.close()  # runner cleanup: the site stops listening, then on_shutdown
    assert PARTS.of(chat.app).hub.accepting is False
    for reader in readers:
        assert await reader == (sent, 1001)  # queued frames went out first
    with pytest.raises(aiohttp.ClientConnectionError):
        await http.ws_connect(url, headers={"Authorization": f"Bearer {make_token()}"})


async def test_no_new_socket_once_shutdown_began(chat: Any, http: Any, make_token: Any) -> None:
    PARTS.of(chat.app).hub.accepting = False  # what on_shutdown sets first
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(
            chat.make_url("/chat/ws"), headers={"Authorization": f"Bearer {make_token()}"}
        )
    assert refused.value.status == 503
