"""Chat through the gateway: REST, the WebSocket with ``?jwt=`` and with the header, logout
closing the socket (4001), and two chat instances behind the gateway delivering each other's
messages (``nox -s dev -- --port chat=3005,3015``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from svc_core.testing import eventually
from svc_devstack.stack import Stack
from tests.e2e.conftest import running_stack
from tests.e2e.test_journey import call, sign_up


async def expect(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.TEXT, (message.type, message.data)
        frame: dict[str, Any] = json.loads(message.data)
        if frame["type"] == kind:
            return frame
        assert frame["type"] == "presence", frame


async def test_chat_through_the_gateway(
    stack: Stack, gateway_url: str, http: aiohttp.ClientSession
) -> None:
    gw = gateway_url
    alice, alice_token = await sign_up(http, gw)
    _, bob_token = await sign_up(http, gw)
    status, room, headers = await call(
        http, "POST", f"{gw}/chat/rooms", alice_token, json={"name": "lobby"}
    )
    assert status == 201, room
    assert "X-RateLimit-Remaining-Minute" in headers
    status, _, _ = await call(http, "GET", f"{gw}/chat/rooms", params={"jwt": alice_token})
    assert status == 401  # REST takes the header only, at the gateway too

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{gw}/chat/ws")
    assert refused.value.status == 401
    by_query = await http.ws_connect(f"{gw}/chat/ws", params={"jwt": alice_token})
    by_header = await http.ws_connect(
        f"{gw}/chat/ws", headers={"Authorization": f"Bearer {bob_token}"}
    )
    for ws in (by_query, by_header):
        await ws.send_json({"type": "join", "room_id": room["id"]})
        assert await expect(ws, "joined") == {"type": "joined", "room_id": room["id"]}
    await by_query.send_json(
        {"type": "message", "room_id": room["id"], "body": "hi bob", "client_id": "c1"}
    )
    ack = await expect(by_query, "ack")
    assert ack["message"]["sender_username"] == alice
    for ws in (by_query, by_header):
        assert (await expect(ws, "message"))["message"] == ack["message"]
    status, posted, _ = await call(
        http, "POST", f"{gw}/chat/rooms/{room['id']}/messages", bob_token, json={"body": "hey"}
    )
    assert status == 201
    for ws in (by_query, by_header):
        assert (await expect(ws, "message"))["message"] == posted
    status, page, _ = await call(http, "GET", f"{gw}/chat/rooms/{room['id']}/messages", bob_token)
    assert [m["body"] for m in page["items"]] == ["hey", "hi bob"]

    # logout revokes the session: its socket is closed with 4001
    status, _, _ = await call(http, "POST", f"{gw}/auth/logout", alice_token)
    assert status == 204
    while True:
        message = await by_query.receive(timeout=5)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert by_query.close_code == 4001
    await by_header.close()


@pytest.fixture
async def two_chats(redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(redis_url, tmp_path, twice=["chat"]) as stack:
        yield stack


async def test_two_chat_instances_behind_the_gateway(
    two_chats: Stack, http: aiohttp.ClientSession
) -> None:
    gw = two_chats.gateway_url
    assert len(two_chats.urls["chat"]) == 2
    _, token = await sign_up(http, gw)
    _, room, _ = await call(http, "POST", f"{gw}/chat/rooms", token, json={"name": "scaled"})
    # round robin: consecutive handshakes land on different instances
    sockets = [await http.ws_connect(f"{gw}/chat/ws", params={"jwt": token}) for _ in range(2)]
    for ws in sockets:
        await ws.send_json({"type": "join", "room_id": room["id"]})
        await expect(ws, "joined")
    for i, ws in enumerate(sockets):
        await ws.send_json(
            {"type": "message", "room_id": room["id"], "body": f"m{i}", "client_id": str(i)}
        )
        ack = await expect(ws, "ack")
        for other in sockets:
            assert (await expect(other, "message"))["message"] == ack["message"]
    for ws in sockets:
        await ws.close()

    async def both_served() -> bool:  # a socket is counted once its handler has returned
        served = []
        for url in two_chats.urls["chat"]:
            async with http.get(f"{url}/metrics") as response:
                served.append('route="/chat/ws"' in await response.text())
        return all(served)

    await eventually(both_served, timeout=10)
