"""Chat tests: real apps on free ports (aiohttp test servers), real sockets, real Redis.

``start_chat()`` starts one more chat instance; every instance of a test shares one MongoDB
(in-memory, by name) and the test's Redis database, as replicas behind the gateway would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from svc_chat import ChatSettings, create_app

Start = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def mongo_url() -> str:
    return f"memory://chat-{uuid.uuid4().hex}"


@pytest.fixture
def start_chat(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_settings: Callable[..., Any],
    mongo_url: str,
) -> Start:
    async def start(**overrides: Any) -> TestServer:
        values: dict[str, Any] = {
            "mongo_url": mongo_url,
            "presence_ttl": 3.0,
            "presence_refresh": 0.5,
            "session_check": 0.1,
            "access_log": False,
        }
        values.update(overrides)
        return await aiohttp_server(create_app(make_settings(ChatSettings, **values)))

    return start


@pytest.fixture
async def chat(start_chat: Start) -> TestServer:
    return await start_chat()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


class Peer:
    """One client socket; ``expect`` skips presence frames unless asked for them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.presence: list[dict[str, Any]] = []
        self.backlog: list[dict[str, Any]] = []  # message frames that arrived while awaiting an ack

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame, ensure_ascii=False))

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, (message.type, message.data, message.extra)
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    async def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            frame = await self.next(timeout)
            if frame["type"] == "presence" and kind != "presence":
                self.presence.append(frame)
                continue
            if frame["type"] == "message" and kind == "ack":
                self.backlog.append(frame)
                continue
            assert frame["type"] == kind, frame
            return frame

    async def error(self, code: str) -> dict[str, Any]:
        frame = await self.expect("error")
        assert frame["code"] == code, frame
        assert set(frame) == {"type", "code", "detail"}
        return frame

    async def join(self, room_id: str, **extra: Any) -> dict[str, Any]:
        await self.send(type="join", room_id=room_id, **extra)
        return await self.expect("joined")

    async def post(self, room_id: str, body: str, client_id: str | None = None) -> dict[str, Any]:
        client_id = client_id or uuid.uuid4().hex
        await self.send(type="message", room_id=room_id, body=body, client_id=client_id)
        ack = await self.expect("ack")
        assert ack["client_id"] == client_id
        message: dict[str, Any] = ack["message"]
        return message

    async def messages(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next ``count`` messages, in the order they arrived."""
        found = []
        while len(found) < count:
            frame = self.backlog.pop(0) if self.backlog else await self.expect("message", timeout)
            found.append(frame["message"])
        return found

    async def members(self, room_id: str, want: set[str], timeout: float = 5.0) -> list[Any]:
        """Wait for a presence frame of ``room_id`` listing exactly the customers ``want``."""
        for frame in reversed(self.presence):
            if frame["room_id"] == room_id:
                if {m["id"] for m in frame["members"]} == want:
                    return list(frame["members"])
                break
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"no presence {want} in {room_id}; last {self.presence[-1:]}"
            frame = await self.next(left)
            if frame["type"] != "presence":
                continue
            self.presence.append(frame)
            if frame["room_id"] == room_id and {m["id"] for m in frame["members"]} == want:
                return list(frame["members"])

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code."""
        while True:
            message = await self.ws.receive(timeout=timeout)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return self.ws.close_code
            assert message.type == aiohttp.WSMsgType.TEXT, message


@pytest.fixture
def connect(
    http: aiohttp.ClientSession, make_token: Callable[..., str]
) -> Callable[..., Awaitable[Peer]]:
    """``await connect(server, sub="c1")``: a socket with a fresh token in the header (or
    ``via="query"`` for ``?jwt=``, or ``token=`` to use a given one)."""

    async def open_socket(
        server: TestServer,
        *,
        sub: str = "cust-alice",
        username: str | None = None,
        token: str | None = None,
        via: str = "header",
        **token_args: Any,
    ) -> Peer:
        token = token or make_token(sub=sub, username=username or sub, **token_args)
        url = server.make_url("/chat/ws")
        if via == "header":
            ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
        else:
            ws = await http.ws_connect(url.with_query(jwt=token))
        return Peer(ws)

    return open_socket


@pytest.fixture
def rest(
    http: aiohttp.ClientSession, auth_header: Callable[..., dict[str, str]]
) -> Callable[..., Awaitable[tuple[int, Any]]]:
    """``await rest(server, "POST", "/chat/rooms", json=..., sub=...)`` → (status, body)."""

    async def call(
        server: TestServer, method: str, path: str, *, sub: str = "cust-alice", **kwargs: Any
    ) -> tuple[int, Any]:
        headers = kwargs.pop("headers", None) or auth_header(sub=sub, username=sub)
        async with http.request(method, server.make_url(path), headers=headers, **kwargs) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else None)

    return call


@pytest.fixture
def new_room(rest: Any) -> Callable[..., Awaitable[str]]:
    async def create(server: TestServer, name: str = "general") -> str:
        status, room = await rest(server, "POST", "/chat/rooms", json={"name": name})
        assert status == 201, room
        room_id: str = room["id"]
        return room_id

    return create
